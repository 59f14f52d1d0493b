// GoogleTest matchers for absl::Status and absl::StatusOr<T> (Debian's Abseil
// 20220623 ships none). Test-only.
//
//   EXPECT_THAT(store.Open(path), IsOk());
//   EXPECT_THAT(result, StatusIs(absl::StatusCode::kDataLoss));
//   EXPECT_THAT(result, StatusIs(absl::StatusCode::kDataLoss,
//                                HasSubstr("index 7")));
//   ASSERT_OK_AND_ASSIGN(auto store, OpenStore(path));
#ifndef BLIXARD_CORE_BASE_STATUS_MATCHERS_H_
#define BLIXARD_CORE_BASE_STATUS_MATCHERS_H_

#include <ostream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::testing {
namespace internal {

inline const absl::Status& GetStatus(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace internal

MATCHER(IsOk, negation ? "is not OK" : "is OK") {
  const absl::Status& status = internal::GetStatus(arg);
  if (!status.ok()) *result_listener << "which is " << status;
  return status.ok();
}

MATCHER_P(StatusIs, code,
          std::string(negation ? "has a code other than " : "has code ") +
              absl::StatusCodeToString(code)) {
  const absl::Status& status = internal::GetStatus(arg);
  *result_listener << "which is " << status;
  return status.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           std::string(negation ? "does not have code " : "has code ") +
               absl::StatusCodeToString(code) + " and a matching message") {
  const absl::Status& status = internal::GetStatus(arg);
  *result_listener << "which is " << status;
  return status.code() == code &&
         ::testing::Matches(message_matcher)(std::string(status.message()));
}

}  // namespace blixard::testing

#define BLIXARD_MATCHERS_CONCAT_INNER(a, b) a##b
#define BLIXARD_MATCHERS_CONCAT(a, b) BLIXARD_MATCHERS_CONCAT_INNER(a, b)
#define ASSERT_OK(expr) ASSERT_THAT(expr, ::blixard::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT(expr, ::blixard::testing::IsOk())
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr)                                     \
  auto BLIXARD_MATCHERS_CONCAT(blixard_statusor_, __LINE__) = (rexpr);       \
  ASSERT_THAT(BLIXARD_MATCHERS_CONCAT(blixard_statusor_, __LINE__).status(), \
              ::blixard::testing::IsOk());                                   \
  lhs = std::move(BLIXARD_MATCHERS_CONCAT(blixard_statusor_, __LINE__)).value()

#endif  // BLIXARD_CORE_BASE_STATUS_MATCHERS_H_
