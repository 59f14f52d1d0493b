// Status propagation helpers (Debian's Abseil 20220623 has none).
//
//   RETURN_IF_ERROR(store.Open(path));
//   ASSIGN_OR_RETURN(Entry entry, store.Read(index));
//   ASSIGN_OR_RETURN(auto rows, Query(db), _.prepend("loading log: "));
//
// The optional third argument of ASSIGN_OR_RETURN is an expression over `_`
// (a StatusBuilder) that adds context before the error is returned.
#ifndef BLIXARD_CORE_BASE_STATUS_MACROS_H_
#define BLIXARD_CORE_BASE_STATUS_MACROS_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace blixard {

// Adds context to an error while keeping its canonical code.
class StatusBuilder {
 public:
  explicit StatusBuilder(absl::Status status) : status_(std::move(status)) {}

  StatusBuilder& prepend(absl::string_view context) {
    status_ = absl::Status(status_.code(),
                           absl::StrCat(context, status_.message()));
    return *this;
  }
  StatusBuilder& append(absl::string_view context) {
    status_ = absl::Status(status_.code(),
                           absl::StrCat(status_.message(), context));
    return *this;
  }
  // Implicit by design: `return _;` must yield a Status or any StatusOr.
  operator absl::Status() const { return status_; }  // NOLINT
  template <typename T>
  operator absl::StatusOr<T>() const {  // NOLINT
    return absl::StatusOr<T>(status_);
  }

 private:
  absl::Status status_;
};

// Prefixes the message of a non-OK status with context; OK passes through.
inline absl::Status Annotate(absl::Status status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, status.message()));
}

}  // namespace blixard

#define BLIXARD_STATUS_CONCAT_INNER(a, b) a##b
#define BLIXARD_STATUS_CONCAT(a, b) BLIXARD_STATUS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                                        \
  do {                                                               \
    ::absl::Status blixard_status_ = (expr);                         \
    if (__builtin_expect(!blixard_status_.ok(), 0)) return blixard_status_; \
  } while (false)

#define BLIXARD_ASSIGN_OR_RETURN_IMPL(statusor, lhs, rexpr, error_expr) \
  auto statusor = (rexpr);                                              \
  if (__builtin_expect(!statusor.ok(), 0)) {                            \
    ::blixard::StatusBuilder _(std::move(statusor).status());           \
    (void)_;                                                            \
    return (error_expr);                                                \
  }                                                                     \
  lhs = std::move(statusor).value()

#define BLIXARD_ASSIGN_OR_RETURN_2(lhs, rexpr)                          \
  BLIXARD_ASSIGN_OR_RETURN_IMPL(                                         \
      BLIXARD_STATUS_CONCAT(blixard_statusor_, __LINE__), lhs, rexpr, _)
#define BLIXARD_ASSIGN_OR_RETURN_3(lhs, rexpr, error_expr)              \
  BLIXARD_ASSIGN_OR_RETURN_IMPL(                                         \
      BLIXARD_STATUS_CONCAT(blixard_statusor_, __LINE__), lhs, rexpr,    \
      error_expr)
#define BLIXARD_ASSIGN_OR_RETURN_PICK(_1, _2, _3, name, ...) name
#define ASSIGN_OR_RETURN(...)                                            \
  BLIXARD_ASSIGN_OR_RETURN_PICK(__VA_ARGS__, BLIXARD_ASSIGN_OR_RETURN_3, \
                                BLIXARD_ASSIGN_OR_RETURN_2, )            \
  (__VA_ARGS__)

#endif  // BLIXARD_CORE_BASE_STATUS_MACROS_H_
