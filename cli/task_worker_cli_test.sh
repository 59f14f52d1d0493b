#!/usr/bin/env bash
# The `task` and `worker` commands' command-line contract without a
# cluster: usage errors exit 2 before any call, and a cluster nobody
# answers for exits 3 within the --timeout given (nothing listens on port
# 1). What they print against a real cluster is for the end-to-end tests.
set -u
bin="$1"
fail=0
unset BLIXARD_ENDPOINTS
none="--endpoints=127.0.0.1:1"
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
expect "help lists task" 0 "^  task +submit a task" -- --help
expect "task help names --task_timeout" 0 "--task_timeout=0" -- task --help
expect "task needs an operation" 2 "which operation" -- task
expect "task unknown operation" 2 "unknown operation 'bogus'" -- task bogus $none
expect "submit needs a command" 2 "needs a command" -- task submit $none
expect "submit needs a command after --" 2 "needs a command" -- task submit $none --
expect "submit bad --task_timeout" 2 "bad value 'soon' for flag --task_timeout" -- \
  task submit --task_timeout=soon $none -- echo hi
expect "submit --task_timeout in whole seconds" 2 "not whole seconds" -- \
  task submit --task_timeout=1500ms $none -- echo hi
expect "submit --task_timeout limit" 2 "above the limit" -- task submit --task_timeout=169h $none -- echo hi
expect "submit negative --task_timeout" 2 "is negative" -- task submit --task_timeout=-1s $none -- echo hi
expect "submit bad --timeout" 2 "bad value 'x' for flag --timeout" -- task submit --timeout=x $none -- echo hi
expect "submit zero resources" 2 "may not all be 0" -- task submit --cpu=0 $none -- echo hi
expect "submit max attempts" 2 "--max_attempts must be 1 to 100" -- task submit --max_attempts=0 $none -- echo hi
expect "submit priority" 2 "--priority must be 0 to 1000" -- task submit --priority=1001 $none -- echo hi
expect "submit bad --wait_timeout" 2 "--wait_timeout must be above 0" -- \
  task submit --wait --wait_timeout=0s $none -- echo hi
expect "submit without endpoints" 2 "no endpoints" -- task submit -- echo hi
expect "submit bad output" 2 "neither table nor json" -- task submit --output=xml $none -- echo hi
expect "list bad --state" 2 "'bogus' is not a task state" -- task list --state=running,bogus $none
expect "list takes no arguments" 2 "'list' takes flags only" -- task list x $none
expect "get takes one id" 2 "'get' takes one task id" -- task get $none
expect "cancel takes one id" 2 "'cancel' takes one task id" -- task cancel a b $none
expect "logs takes one id" 2 "'logs' takes one task id" -- task logs $none
# Unreachable: exit 3, and a drawn id is named so the submit can be
# checked or repeated safely.
expect "submit unreachable" 3 "task task-[0-9a-f]{16} may or may not have been submitted" -- \
  task submit $none --timeout=300ms -- echo hello
expect "submit --wait unreachable" 3 "UNAVAILABLE" -- \
  task submit --wait --id=t1 $none --timeout=300ms -- sh -c "echo hi"
expect "get unreachable" 3 "UNAVAILABLE" -- task get t1 $none --timeout=300ms
expect "list unreachable" 3 "UNAVAILABLE" -- task list --state=running,failed $none --timeout=300ms
expect "cancel unreachable" 3 "UNAVAILABLE" -- task cancel t1 $none --timeout=300ms
expect "logs unreachable" 3 "UNAVAILABLE" -- task logs t1 $none --timeout=300ms --output=json
expect "help lists worker" 0 "^  worker +list the workers" -- --help
expect "worker needs an operation" 2 "which operation" -- worker
expect "worker unknown operation" 2 "unknown operation 'bogus'" -- worker bogus $none
expect "worker list takes no arguments" 2 "'list' takes no arguments" -- worker list x $none
expect "drain takes one id" 2 "'drain' takes one worker id" -- worker drain $none
expect "drain id is a number" 2 "'drain' takes one worker id" -- worker drain x $none
expect "undrain id is not 0" 2 "'undrain' takes one worker id" -- worker undrain 0 $none
expect "worker without endpoints" 2 "no endpoints" -- worker list
expect "worker list unreachable" 3 "UNAVAILABLE" -- worker list $none --timeout=300ms
expect "drain unreachable" 3 "UNAVAILABLE" -- worker drain 1 $none --timeout=300ms
expect "undrain unreachable" 3 "UNAVAILABLE" -- worker undrain 1 $none --timeout=300ms --output=json
exit $fail
