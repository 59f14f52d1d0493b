#!/usr/bin/env bash
# `blixard check perf` and `blixard bench put|get` against a real 3-node
# `blixard dev` cluster, briefly: the report's shape, not its verdict (PASS
# depends on the machine). Bounded: every wait has a limit; the cluster
# is stopped by the pid this script started.
set -u
bin="$1"
fail=0
dir="${TEST_TMPDIR:-$(mktemp -d)}/check-perf"
mkdir -p "$dir"
fifo="$dir/dev.out"
mkfifo "$fifo"
"$bin" dev --nodes=3 --data_dir="$dir/dev" >"$fifo" 2>"$dir/dev.err" &
dev_pid=$!
exec 3<"$fifo"
cleanup() {
  kill -TERM "$dev_pid" 2>/dev/null
  wait "$dev_pid" 2>/dev/null
  exec 3<&-
}
trap cleanup EXIT
endpoints=""
if read -r -t 60 -u 3 line && [[ "$line" == endpoints:* ]]; then
  endpoints="${line#endpoints: }"
fi
if [[ -z "$endpoints" ]]; then
  echo "FAIL: blixard dev printed no endpoints: $(cat "$dir/dev.err")"; exit 1
fi

# check perf: exit 0 (PASS) or 1 (FAIL), etcd's lines in etcd's order.
out=$("$bin" check perf --load=s --duration=2s --endpoints="$endpoints" 2>"$dir/check.err")
code=$?
if [[ "$code" != 0 && "$code" != 1 ]]; then
  echo "FAIL: check perf exited $code: $out $(cat "$dir/check.err")"; fail=1
fi
shape='^(PASS|FAIL): Throughput (is|too low:) [0-9]+ writes/s
(PASS|FAIL): Slowest request took (too long: )?[0-9]+\.[0-9]{6}s
(PASS|FAIL): Stddev (is|too high:) [0-9]+\.[0-9]{6}s
(PASS|FAIL)$'
if ! grep -qzE -- "$shape" <<<"$out"; then
  echo "FAIL: check perf's report has the wrong shape: $out"; fail=1
else
  echo "ok: check perf report: $(tr '\n' ' ' <<<"$out")"
fi
verdict=$(tail -n1 <<<"$out")
if [[ ("$verdict" == PASS && "$code" != 0) || ("$verdict" == FAIL && "$code" != 1) ]]; then
  echo "FAIL: verdict $verdict but exit $code"; fail=1
fi

# bench put, then bench get reading what put wrote (--fill=false).
expect() {  # expect <description> <pattern> -- args...
  local what="$1" pattern="$2"; shift 3
  local out code
  out=$("$bin" "$@" --endpoints="$endpoints" 2>&1); code=$?
  if [[ "$code" != 0 ]] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL: $what: exit $code, want 0 and /$pattern/: $out"; fail=1; return
  fi
  echo "ok: $what"
}
expect "bench put" "^slowest +[0-9.]+ ms" -- bench put --clients=8 --ops=200 --key_size=32
expect "bench put table" "^latency +p50 [0-9.]+ ms, p90 [0-9.]+ ms, p99 [0-9.]+ ms, p99.9 [0-9.]+ ms" -- \
  bench put --clients=8 --ops=200 --key_size=32
expect "bench get of put's keys" "^reads +100 ok, 0 failed" -- \
  bench get --clients=4 --ops=100 --keys=200 --key_size=32 --fill=false
expect "bench get fills its keys" "^filled +50 keys" -- bench get --clients=4 --ops=100 --keys=50
expect "bench json" '"stddev_ms":[0-9.]+' -- bench put --clients=2 --ops=20 --output=json
exit $fail
