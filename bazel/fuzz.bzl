"""One libFuzzer target, two products.

blixard_fuzz_target(name = "foo_fuzzer", srcs = ["foo_fuzzer.cc"], deps = [...])
makes
  :foo_fuzzer         the libFuzzer binary under --config=fuzz; in other
                      configurations the same sources linked to the replay
                      main, so `bazel build //...` always builds it;
  :foo_fuzzer_replay  a cc_test run by every `bazel test //...` that feeds
                      each file of testdata/fuzz/foo_fuzzer/ (and a fixed set
                      of seeded pseudo-random inputs) to the target.
The corpus lives in testdata/fuzz/<name>/; testdata/fuzz/BUILD.bazel lists
each target's folder as a filegroup.
"""

load("//bazel:copts.bzl", "BLIXARD_TEST_COPTS")

def blixard_fuzz_target(name, srcs, deps = [], size = "small", **kwargs):
    corpus = "//testdata/fuzz:%s" % name
    native.cc_binary(
        name = name,
        testonly = True,
        srcs = srcs,
        copts = BLIXARD_TEST_COPTS,
        linkopts = select({
            "//bazel:fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        deps = deps + select({
            "//bazel:fuzzing": [],
            "//conditions:default": ["//bazel:fuzz_replay_main"],
        }),
        **kwargs
    )
    native.cc_test(
        name = name + "_replay",
        size = size,
        srcs = srcs,
        copts = BLIXARD_TEST_COPTS,
        args = ["$(locations %s)" % corpus],
        data = [corpus],
        deps = deps + ["//bazel:fuzz_replay_main"],
        **kwargs
    )
