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
