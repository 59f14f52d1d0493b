"""Google Benchmark targets.

blixard_benchmark(name = "foo_benchmark", srcs = ["foo_benchmark.cc"], deps = [...])
makes
  :foo_benchmark        the benchmark binary; real runs with
                        `bazel run -c opt //pkg:foo_benchmark`;
  :foo_benchmark_smoke  a test run by every `bazel test //...` with a tiny
                        minimum time, so benchmarks keep compiling and running.
The figures are never asserted in tests: timing belongs in benchmarks.
"""

load("//bazel:copts.bzl", "BLIXARD_TEST_COPTS")

def blixard_benchmark(name, srcs, deps = [], smoke_args = [], **kwargs):
    native.cc_binary(
        name = name,
        testonly = True,
        srcs = srcs,
        copts = BLIXARD_TEST_COPTS,
        tags = ["benchmark"],
        deps = deps + ["@system//:benchmark_main"],
        **kwargs
    )
    native.cc_test(
        name = name + "_smoke",
        size = "medium",
        srcs = srcs,
        copts = BLIXARD_TEST_COPTS,
        args = ["--benchmark_min_time=0.001"] + smoke_args,
        tags = ["benchmark"],
        deps = deps + ["@system//:benchmark_main"],
        **kwargs
    )
