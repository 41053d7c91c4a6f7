#!/usr/bin/env bash
# The demo: the whole pipeline on the local stack. with-stack.sh has started the stack and
# exported its endpoints before this runs.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$here/stack.sh" status
cat <<'TXT'

The local stack is up (above). Not built yet: the consumer (issue 3) and the producer's
simulate/verify (issue 4), so the demo stops here and with-stack.sh stops what it started.
TXT
