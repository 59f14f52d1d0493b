#!/usr/bin/env bash
# End-to-end checks of the blixard binary's command-line contract.
set -u
bin="$1"
fail=0
expect() {  # expect <description> <want-exit> <pattern> -- args...
  local what="$1" want="$2" pattern="$3"; shift 4
  local out code
  out=$("$bin" "$@" 2>&1); code=$?
  if [[ "$code" != "$want" ]]; then
    echo "FAIL: $what: exit $code, want $want; output: $out"; fail=1; return
  fi
  if ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL: $what: output lacks /$pattern/: $out"; fail=1; return
  fi
  echo "ok: $what"
}
expect "help lists subcommands" 0 "^  version +print the release" -- --help
expect "help word works too" 0 "commands:" -- help
expect "no command is a usage error" 2 "usage: blixard" --
expect "unknown command" 2 "^blixard: unknown command 'nosuch'" -- nosuch
expect "version prints a version" 0 "^blixard [0-9]+\.[0-9]+\.[0-9]+ \(protocol [0-9]+\)$" -- version
expect "unknown flag" 2 "unknown flag --bogus" -- version --bogus=1
expect "stray argument" 2 "takes no arguments" -- version extra
# Shrinking (issue 7): a passing seed has nothing to shrink; a failing one
# (a liveness bound no run can meet) is shrunk below its 8 ops and written as a script.
expect "shrink of a passing seed" 0 "passed: nothing to shrink" -- sim --seed=3 --nodes=3 --duration=2s --shrink
out_dir="${TEST_TMPDIR:-/tmp}"
expect "shrink of a failing seed" 1 "^after +[0-9] nodes, .*, [0-9] faults, [1-7] ops" -- \
  sim --seed=1 --nodes=3 --duration=2s --liveness=1ms --shrink --shrink_runs=200 \
  --shrink_out="$out_dir/shrunk.txt"
if ! grep -q "^violation liveness$" "$out_dir/shrunk.txt" 2>/dev/null; then
  echo "FAIL: the shrunk script lacks its violation"; fail=1
fi
expect "shrink takes one seed" 2 "take one --seed" -- sim --seeds=1-2 --shrink
expect "record a run as a script" 0 "^passed: recorded" -- \
  sim --seed=3 --nodes=3 --duration=1s --record_script="$out_dir/recorded.txt"
expect "swarm prints its params first" 0 "^swarm +nodes=[1-7] spares=[0-9] election_ticks=" -- sim --faults=swarm --seed=3 --duration=3s
expect "swarm run ends with a verdict" 0 "^result +(PASS|RECOVERY IMPOSSIBLE)" -- sim --faults=swarm --seed=3 --duration=3s
expect "explicit swarm params need faults=swarm" 2 "needs --faults=swarm" -- sim --swarm_params="$("$bin" sim --faults=swarm --seed=3 --duration=1s | sed -n 's/^swarm *//p')"
expect "bad swarm params are named" 2 "unknown key \"bogus\"" -- sim --faults=swarm --swarm_params="bogus=1"
expect "explicit swarm params replay the drawn run" 0 "^trace hash +$("$bin" sim --faults=swarm --seed=4 --duration=3s | sed -n 's/^trace hash *//p')" -- sim --faults=swarm --seed=4 --duration=3s --swarm_params="$("$bin" sim --faults=swarm --seed=4 --duration=1s | sed -n 's/^swarm *//p')"
expect "swarm sweep counts verdicts" 0 "linearizability +3 linearizable, 0 not linearizable, 0 inconclusive" -- sim --faults=swarm --seeds=1-3 --jobs=2 --duration=3s
expect "verbose sim lists coverage marks" 0 "^coverage marks +check_quorum_step_down +[0-9]+$" -- \
  sim --seed=1 --nodes=3 --duration=2s --faults=none --verbose
expect "sweep ends with the marks it missed" 0 "^marks missed " -- \
  sim --seeds=1-2 --jobs=2 --nodes=3 --duration=2s --faults=none
expect "zero snapshot interval is a usage error" 2 "snapshot interval must be positive" -- \
  sim --snapshot_interval=0
# --check-determinism on 20 swarm seeds (issue 7): each runs twice and must
# produce the same trace, event for event.
for seed in $(seq 1 20); do
  expect "swarm seed $seed is deterministic" 0 "^deterministic: seed $seed ran twice" -- \
    sim --faults=swarm --seed="$seed" --duration=10s --check-determinism
done
# Production commands (issue 14): usage errors exit 2, an unreachable
# cluster 3; nothing listens on port 1.
unset BLIXARD_ENDPOINTS
expect "kv needs an operation" 2 "which operation" -- kv
expect "kv unknown operation" 2 "unknown operation 'bogus'" -- kv bogus k --endpoints=127.0.0.1:1
expect "kv get takes one key" 2 "takes 1 arguments" -- kv get a b --endpoints=127.0.0.1:1
expect "kv without endpoints" 2 "no endpoints" -- kv get k
expect "kv cas version is a number" 2 "VERSION 'x'" -- kv cas k x v --endpoints=127.0.0.1:1
expect "kv bad output" 2 "neither table nor json" -- kv get k --endpoints=127.0.0.1:1 --output=xml
expect "kv unreachable" 3 "UNAVAILABLE" -- kv get k --endpoints=127.0.0.1:1 --timeout=300ms
BLIXARD_ENDPOINTS=127.0.0.1:1 expect "kv endpoints from the environment" 3 "127.0.0.1:1" -- \
  kv get k --timeout=300ms
expect "cluster status unreachable" 3 "unreachable" -- cluster status --endpoints=127.0.0.1:1 --timeout=300ms
expect "cluster needs status" 2 "usage: blixard cluster status" -- cluster
expect "node without a data dir" 2 "data_dir must be set" -- node --id=1 --initial_cluster=1=127.0.0.1:1
expect "node bad initial cluster" 2 "ID=HOST:PORT" -- node --id=1 --data_dir=/tmp/x --initial_cluster=one
expect "node bad state" 2 "neither new nor existing" -- \
  node --id=1 --data_dir=/tmp/x --initial_cluster=1=127.0.0.1:1 --initial_cluster_state=old
expect "node config excludes flags" 2 "excludes the other settings" -- node --config=/x --id=1
expect "dev node count" 2 "not in 1..9" -- dev --nodes=0
expect "bench needs put or get" 2 "usage: blixard bench put\|get" -- bench del --endpoints=127.0.0.1:1
expect "bench unreachable" 3 "UNAVAILABLE" -- bench put --endpoints=127.0.0.1:1 --timeout=300ms
expect "bench get needs keys" 2 "--keys must be at least 1" -- bench get --keys=0 --endpoints=127.0.0.1:1
expect "check needs perf" 2 "usage: blixard check perf" -- check --endpoints=127.0.0.1:1
expect "check unknown load" 2 "unknown load 'xxl'" -- check perf --load=xxl --endpoints=127.0.0.1:1
expect "check unreachable" 3 "UNAVAILABLE" -- check perf --endpoints=127.0.0.1:1 --timeout=300ms
lines=$("$bin" nosuch 2>&1 | wc -l)
if [[ "$lines" != 1 ]]; then echo "FAIL: unknown command error is $lines lines, want 1"; fail=1; fi
exit $fail
