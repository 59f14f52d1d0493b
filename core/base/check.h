// Always-on assertions.
//
// CHECK(cond) << "context";        aborts when cond is false, in every build.
// CHECK_EQ(a, b) << "context";     and _NE, _LT, _LE, _GT, _GE: print both
//                                  operands on failure.
// DCHECK(cond), DCHECK_EQ(a, b)... expensive checks: on in debug (fastbuild),
//                                  asan, sim and fuzz builds; compiled out in
//                                  -c opt unless BLIXARD_EXPENSIVE_CHECKS is
//                                  defined. Their operands must have no side
//                                  effects.
//
// A broken invariant is a bug: the process must stop before it acts on a lie
// (TigerBeetle's rule). Operating errors are absl::Status, never a CHECK.
// Operands are printed through operator<<, so every type compared with
// CHECK_xx needs one (the strong types in types.h have it).
#ifndef BLIXARD_CORE_BASE_CHECK_H_
#define BLIXARD_CORE_BASE_CHECK_H_

#include <sstream>
#include <string>

namespace blixard::check_internal {

// The message of a failed CHECK, built on the heap by the cold path: a
// failing CHECK leaves one pointer on its caller's stack, not an
// ostringstream. With the stream on the stack every function holding a
// CHECK got a large frame and a stack-protector canary on its hot path, and
// one-line accessors (Index::Prev) were too big to inline.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  std::ostream& stream() { return stream_; }
  std::string message() const { return stream_.str(); }

 private:
  std::ostringstream stream_;
};

// The temporary a failing CHECK streams its context into; prints the
// message and aborts in its destructor, at the end of the statement.
class CheckFailureMessage {
 public:
  explicit CheckFailureMessage(CheckFailure* failure) : failure_(failure) {}
  CheckFailureMessage(const CheckFailureMessage&) = delete;
  CheckFailureMessage& operator=(const CheckFailureMessage&) = delete;
  [[noreturn]] ~CheckFailureMessage();

  std::ostream& stream() { return failure_->stream(); }

 private:
  CheckFailure* failure_;
};

[[gnu::cold, gnu::noinline]] CheckFailure* NewCheckFailure(const char* file, int line,
                                                           const char* condition);

// A failed CHECK_xx: the condition and both operands.
template <typename A, typename B>
[[gnu::cold, gnu::noinline]] CheckFailure* NewCheckOpFailure(const char* file, int line,
                                                             const char* condition,
                                                             const A& a, const B& b) {
  CheckFailure* failure = NewCheckFailure(file, line, condition);
  failure->stream() << "(" << a << " vs. " << b << ") ";
  return failure;
}

// Makes `CHECK(x) << ...` an expression of type void in both branches.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace blixard::check_internal

#define BLIXARD_CHECK_PREDICT_TRUE(x) (__builtin_expect(static_cast<bool>(x), 1))

#define CHECK(condition)                                                  \
  BLIXARD_CHECK_PREDICT_TRUE(condition)                                   \
  ? (void)0                                                               \
  : ::blixard::check_internal::Voidify() &                                \
        ::blixard::check_internal::CheckFailureMessage(                   \
            ::blixard::check_internal::NewCheckFailure(__FILE__, __LINE__, \
                                                       #condition))       \
            .stream()

#define BLIXARD_CHECK_OP(op, a, b)                                          \
  for (bool blixard_check_ok_ = true; blixard_check_ok_;                     \
       blixard_check_ok_ = false)                                            \
    for (const auto& blixard_check_a_ = (a); blixard_check_ok_;              \
         blixard_check_ok_ = false)                                          \
      for (const auto& blixard_check_b_ = (b); blixard_check_ok_;            \
           blixard_check_ok_ = false)                                        \
        if (BLIXARD_CHECK_PREDICT_TRUE(blixard_check_a_ op blixard_check_b_)) \
          ;                                                                  \
        else                                                                 \
          ::blixard::check_internal::CheckFailureMessage(                    \
              ::blixard::check_internal::NewCheckOpFailure(                  \
                  __FILE__, __LINE__, #a " " #op " " #b, blixard_check_a_,   \
                  blixard_check_b_))                                         \
              .stream()

#define CHECK_EQ(a, b) BLIXARD_CHECK_OP(==, a, b)
#define CHECK_NE(a, b) BLIXARD_CHECK_OP(!=, a, b)
#define CHECK_LT(a, b) BLIXARD_CHECK_OP(<, a, b)
#define CHECK_LE(a, b) BLIXARD_CHECK_OP(<=, a, b)
#define CHECK_GT(a, b) BLIXARD_CHECK_OP(>, a, b)
#define CHECK_GE(a, b) BLIXARD_CHECK_OP(>=, a, b)

// CHECK_OK(status): a Status that must be OK (an invariant, not an I/O path).
#define CHECK_OK(expr)                                                  \
  for (const auto& blixard_check_status_ = (expr);                      \
       !blixard_check_status_.ok();)                                    \
  ::blixard::check_internal::CheckFailureMessage(                       \
      ::blixard::check_internal::NewCheckFailure(__FILE__, __LINE__,    \
                                                 #expr " is OK"))       \
          .stream()                                                     \
      << blixard_check_status_ << " "

#if !defined(NDEBUG) || defined(BLIXARD_EXPENSIVE_CHECKS)
#define BLIXARD_DCHECK_IS_ON 1
#define DCHECK(condition) CHECK(condition)
#define DCHECK_EQ(a, b) CHECK_EQ(a, b)
#define DCHECK_NE(a, b) CHECK_NE(a, b)
#define DCHECK_LT(a, b) CHECK_LT(a, b)
#define DCHECK_LE(a, b) CHECK_LE(a, b)
#define DCHECK_GT(a, b) CHECK_GT(a, b)
#define DCHECK_GE(a, b) CHECK_GE(a, b)
#else
#define BLIXARD_DCHECK_IS_ON 0
// Type-checks the operands without evaluating them.
#define DCHECK(condition) \
  while (false) CHECK(condition)
#define DCHECK_EQ(a, b) \
  while (false) CHECK_EQ(a, b)
#define DCHECK_NE(a, b) \
  while (false) CHECK_NE(a, b)
#define DCHECK_LT(a, b) \
  while (false) CHECK_LT(a, b)
#define DCHECK_LE(a, b) \
  while (false) CHECK_LE(a, b)
#define DCHECK_GT(a, b) \
  while (false) CHECK_GT(a, b)
#define DCHECK_GE(a, b) \
  while (false) CHECK_GE(a, b)
#endif

namespace blixard {
// True when DCHECKs (and other expensive checks) are compiled in.
inline constexpr bool kExpensiveChecks = BLIXARD_DCHECK_IS_ON;
}  // namespace blixard

#endif  // BLIXARD_CORE_BASE_CHECK_H_
