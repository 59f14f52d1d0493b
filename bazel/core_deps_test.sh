#!/usr/bin/env bash
# core depends on nothing outside core (ARCHITECTURE.md: `core` <- `storage`,
# `sim`, `net` <- `cli`). Reads //bazel:core_deps, everything core's targets
# reach as "<kind> rule <label>" / "source file <label>" lines, and fails
# listing each label that is neither
#   - in core (//core:... or //core/...),
#   - in an allowed external repository: the Debian system libraries, the
#     protobuf runtime and compiler, and Bazel's own toolchain repositories,
#   - a build switch or visibility group in //bazel (config_setting,
#     package_group): configuration, not code;
#   - //bazel:malloc, the allocator a benchmark binary links (tcmalloc, or
#     the C library's under the sanitizers): a link-time choice of a system
#     library, no code of another layer.
# Then checks the query saw all of core: every target named in a core BUILD
# file must be in its output, else core_deps's scope (CORE_ROOTS in
# bazel/BUILD.bazel) misses a root and its dependencies go unchecked.
#
# usage: core_deps_test.sh <core_deps query output> <WORKSPACE file>
set -u
deps=$1
# The source tree, found through the WORKSPACE symlink in the runfiles (the
# test is tagged "external" so it is never served from the cache).
root=$(dirname "$(readlink -f "$2")")
[[ -d "$root/core" ]] || { echo "cannot find core/ next to $2 (resolved to $root)"; exit 1; }
fail=0

# The query output must look like what this script parses: a format change
# would otherwise make every check below pass vacuously.
core_count=$(grep -cE ' //core[/:]' "$deps")
if (( core_count < 50 )); then
  echo "FAIL: the query lists $core_count core labels, expected at least 50:"
  head -5 "$deps"
  exit 1
fi

allowed_repos='@(system|com_google_protobuf|bazel_tools|local_config_cc|platforms|remote_coverage_tools|rules_cc)//'
outside=$(grep -vE " (//core[/:]|${allowed_repos})" "$deps" |
  grep -vE '^(config_setting rule|package group) //bazel:' |
  grep -vE '^cc_library rule //bazel:malloc$')
if [[ -n "$outside" ]]; then
  echo "FAIL: core depends on targets outside core:"
  sed 's/^/  /' <<<"$outside"
  echo "  (find the path with: bazel query 'somepath(//core/..., <label>)')"
  fail=1
else
  echo "ok: $(wc -l <"$deps") labels reached from core, none outside core"
fi

# Every target a core BUILD file names must have been reached.
labels=$(awk '{print $NF}' "$deps" | sort -u)
missing=""
declared=0
while IFS= read -r build; do
  pkg=${build%/BUILD*}
  for name in $(grep -oE '\bname = "[^"]+"' "$root/$build" | sed -E 's/.*"([^"]+)"/\1/'); do
    declared=$((declared + 1))
    label="//$pkg:$name"
    grep -qxF -- "$label" <<<"$labels" || missing+="  $label"$'\n'
  done
done < <(cd "$root" && find core -name BUILD.bazel -o -name BUILD | sort)
if (( declared == 0 )); then
  echo "FAIL: found no targets in the BUILD files under $root/core"; exit 1
fi
if [[ -n "$missing" ]]; then
  echo "FAIL: the query did not reach these core targets; add them to CORE_ROOTS in" \
    "bazel/BUILD.bazel so their dependencies are checked:"
  printf '%s' "$missing"
  fail=1
else
  echo "ok: all $declared targets declared under core/ were reached"
fi
exit $fail
