"""Shared compiler options: strict warnings, all of them errors."""

BLIXARD_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wconversion",
    "-Wsign-conversion",
    "-Wnon-virtual-dtor",
    "-Wimplicit-fallthrough",
]

# Tests and benchmarks keep the same warnings; gtest macros compare signed and
# unsigned literals freely, so sign-conversion is relaxed there only.
BLIXARD_TEST_COPTS = BLIXARD_COPTS + [
    "-Wno-sign-conversion",
]

# Oracles and test harnesses (checkers, the test cluster): no coverage
# instrumentation in fuzz builds. Their branches are not what a fuzzer should
# steer by, and the comparison tracing in code that runs after every step
# cost the network fuzzers a third of their speed. ASan and UBSan stay on.
BLIXARD_ORACLE_COPTS = BLIXARD_COPTS + select({
    "//bazel:fuzzing": ["-fno-sanitize=fuzzer-no-link"],
    "//conditions:default": [],
})
