#!/usr/bin/env bash
# Run the whole test suite after set-up. pytest's exit code 5 (no tests collected) is a
# failure here: an empty run must never look green.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit $?
.venv/bin/pytest "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit $rc
