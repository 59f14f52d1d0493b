#!/usr/bin/env bash
# Opens a simulation's --timeline HTML in headless Chromium (issue 7: the
# timeline must render in a real browser, self-contained, no network) and
# checks that the browser's DOM holds every element the file drew: an HTML
# parser silently re-nests or drops elements of a malformed SVG, so equal
# counts mean the markup was well-formed. Also takes a screenshot and checks
# the browser produced one. tools/bootstrap installs Chromium; without it
# this test fails (it is never skipped).
set -euo pipefail
blixard=$1
out=${TEST_TMPDIR:-$(mktemp -d)}
browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$browser" ]]; then
  echo "FAIL: chromium is not installed (tools/bootstrap installs it)" >&2
  exit 1
fi

# A faulty run with a violation-free timeline, and a failing run whose
# timeline marks the violation (a liveness bound no cluster can meet).
"$blixard" sim --seed=3 --nodes=3 --faults=heavy --duration=10s --timeline="$out/ok.html" >/dev/null
set +e
"$blixard" sim --seed=3 --nodes=3 --faults=heavy --duration=10s --liveness=1ms \
  --timeline="$out/violation.html" >/dev/null
rc=$?
set -e
[[ $rc -eq 1 ]] || { echo "FAIL: expected the 1ms-liveness run to fail (exit 1), got $rc" >&2; exit 1; }

count() { { grep -o "$1" "$2" || true; } | wc -l; }
check() {
  local html=$1 dom=$out/$(basename "$1" .html).dom.html
  # HOME: Chromium writes its profile there; the sandbox's is read-only.
  HOME=$out timeout 60 "$browser" --headless --no-sandbox --disable-gpu \
    --dump-dom "file://$html" >"$dom" 2>"$out/chromium.log" || {
    echo "FAIL: chromium could not load $html" >&2; tail -5 "$out/chromium.log" >&2; exit 1; }
  for tag in '<svg' '</svg>' '<rect' '<line' '<text' '<title>' '<polygon'; do
    local want got
    want=$(count "$tag" "$html")
    got=$(count "$tag" "$dom")
    if [[ "$want" != "$got" ]]; then
      echo "FAIL: $html has $want '$tag' but the browser's DOM has $got" >&2
      exit 1
    fi
  done
  [[ $(count '<rect' "$dom") -gt 10 ]] || { echo "FAIL: $html draws almost nothing" >&2; exit 1; }
  if grep -q 'src="http\|href="http\|url(http\|@import' "$html"; then
    echo "FAIL: $html loads something from the network" >&2; exit 1
  fi
  HOME=$out timeout 60 "$browser" --headless --no-sandbox --disable-gpu \
    --window-size=1400,900 --screenshot="$out/shot.png" "file://$html" >/dev/null 2>&1
  [[ -s "$out/shot.png" ]] || { echo "FAIL: no screenshot of $html" >&2; exit 1; }
  rm -f "$out/shot.png"
}
check "$out/ok.html"
check "$out/violation.html"
grep -q 'no violation' "$out/ok.dom.html" || { echo "FAIL: ok.html does not say 'no violation'" >&2; exit 1; }
grep -q 'liveness' "$out/violation.dom.html" || { echo "FAIL: violation.html does not mark the liveness violation" >&2; exit 1; }
echo "PASS: both timelines render in $("$browser" --version 2>/dev/null | head -1)"
