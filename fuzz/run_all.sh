#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS each, two at a time (this machine
# has two cores), merges new coverage into testdata/fuzz/<target>/, and prints
# per target: executions per second, final coverage (edges), corpus size and
# findings. Per-target extras: fuzz/<target>.dict (a dictionary) and
# fuzz/<target>.flags (libFuzzer flags, one per line). Exits 1 if any target found a crash, leak or timeout; the
# reproducers are left in fuzz/out/<target>/.
#
#   fuzz/run_all.sh 600            # 10 minutes per target
#   fuzz/run_all.sh 60 raft_step_fuzzer wire_decode_fuzzer
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: fuzz/run_all.sh SECONDS [TARGET...]}
shift
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a whole number, got '$seconds'" >&2; exit 2; }

if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  mapfile -t targets < <(bazel query --noshow_progress 'kind(cc_binary, //fuzz:*)' 2>/dev/null | sed 's|//fuzz:||')
fi
[[ ${#targets[@]} -gt 0 ]] || { echo "no fuzz targets found" >&2; exit 2; }

labels=()
for t in "${targets[@]}"; do labels+=("//fuzz:$t"); done
bazel build --config=fuzz "${labels[@]}" || exit 1
bin=$(bazel info --config=fuzz bazel-bin 2>/dev/null)

run_one() {
  local t=$1 out=fuzz/out/$1
  rm -rf "$out"; mkdir -p "$out/new"
  local corpus=testdata/fuzz/$t
  local dict=() flags=()
  [[ -f fuzz/$t.dict ]] && dict=(-dict="fuzz/$t.dict")
  # Per-target libFuzzer flags, one per line (e.g. -entropic=0 where the
  # entropic schedule's bookkeeping dominates a target with many features).
  [[ -f fuzz/$t.flags ]] && mapfile -t flags < "fuzz/$t.flags"
  # Work on a copy so the checked-in corpus only gains minimized inputs.
  cp "$corpus"/* "$out/new/" 2>/dev/null
  "$bin/fuzz/$t" "$out/new" "${dict[@]}" "${flags[@]}" -max_total_time="$seconds" \
    -artifact_prefix="$out/" -print_final_stats=1 -rss_limit_mb=4096 \
    -timeout=30 >"$out/log" 2>&1
  echo $? >"$out/rc"
  # Merge: keep only inputs that add coverage to the checked-in corpus.
  "$bin/fuzz/$t" -merge=1 "$corpus" "$out/new" >"$out/merge.log" 2>&1 || true
}

pids=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [[ ${#pids[@]} -ge 2 ]]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
wait

status=0
printf '%-26s %10s %10s %8s %s\n' target execs/s coverage corpus findings
for t in "${targets[@]}"; do
  out=fuzz/out/$t
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$out/log" | grep -oE '[0-9]+$' | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$out/log" | tail -1 | grep -oE '[0-9]+')
  per_second=$(( ${execs:-0} / (seconds > 0 ? seconds : 1) ))
  corpus=$(find "testdata/fuzz/$t" -type f | wc -l)
  findings=$(find "$out" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' -o -maxdepth 1 -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' | wc -l)
  [[ "$findings" -gt 0 || "$(cat "$out/rc")" != 0 ]] && status=1
  printf '%-26s %10s %10s %8s %s\n' "$t" "$per_second" "${cov:-?}" "$corpus" "$findings"
done
exit $status
