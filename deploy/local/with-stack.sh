#!/usr/bin/env bash
# with-stack.sh CMD [ARG...]: run CMD with the local stack up and the environment pointing at it,
# then stop exactly the services this call started (a stack that was already running stays up).
# CMD's exit status is ours.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
started=$(mktemp)
cleanup() {
  # shellcheck disable=SC2046 # one service name per line
  [ -s "$started" ] && "$here/stack.sh" down $(cat "$started")
  rm -f "$started"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
STACK_STARTED_FILE=$started "$here/stack.sh" up || exit 1
eval "$("$here/stack.sh" env)"
"$@"
