#!/usr/bin/env bash
# core/ must stay pure: no system I/O headers, no threads, no clocks, no
# std random, so the same code runs under the simulator, libFuzzer and the
# production loop, and a seed replays a run exactly.
# Finds the source tree through the WORKSPACE symlink in the runfiles (the
# test is tagged "external" so it is never served from the cache).
set -u
root=$(dirname "$(readlink -f "$1")")
[[ -d "$root/core" ]] || { echo "cannot find core/ next to $1 (resolved to $root)"; exit 1; }
cd "$root"
fail=0
report() {
  if [[ -n "$2" ]]; then echo "FAIL: $1:"; echo "$2"; fail=1; else echo "ok: $1"; fi
}
# Every file under core/, tests and benchmarks included. Comments may name
# what is banned; code may not.
sources=$(find core -name '*.h' -o -name '*.cc' | sort)
[[ -n "$sources" ]] || { echo "no sources under core/"; exit 1; }
report "no system I/O or thread headers" \
  "$(grep -nE '#include <(sys/|unistd\.h|fcntl\.h|thread|mutex|condition_variable|future|fstream|filesystem|chrono|ctime|time\.h|random|sqlite3\.h|netinet|arpa/)' $sources)"
report "no clocks, sleeps or libc randomness" \
  "$(grep -nE 'std::(random_device|mt19937|uniform_int_distribution|uniform_real_distribution)|system_clock|steady_clock|high_resolution_clock|absl::Now|absl::BitGen|[^_a-zA-Z:.>](rand|srand|time|gettimeofday|clock_gettime|sleep|usleep)\(' $sources | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//')"
echo "checked $(wc -w <<<"$sources") files under core/"
exit $fail
