"""blixard_process_test: a test that runs real `blixard` processes.

The binary is a data dependency (never a library one) and $BLIXARD_BIN names
it, which net/testing's TestClusterOptions reads.
"""

load("//bazel:copts.bzl", "BLIXARD_TEST_COPTS")

def blixard_process_test(name, srcs, deps, size = "medium", data = [], env = {}, **kwargs):
    all_env = {"BLIXARD_BIN": "$(location //cli:blixard)"}
    all_env.update(env)
    native.cc_test(
        name = name,
        size = size,
        srcs = srcs,
        copts = BLIXARD_TEST_COPTS,
        data = ["//cli:blixard"] + data,
        env = all_env,
        deps = deps,
        **kwargs
    )
