# Shared by the deploy scripts (DEP-5). Sourced, not run.
# Finds the deployops command: $DEPLOYOPS, the project's .venv, or PATH.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
if [ -n "${DEPLOYOPS:-}" ]; then
  deployops=("$DEPLOYOPS")
elif [ -x "$root/.venv/bin/deployops" ]; then
  deployops=("$root/.venv/bin/deployops")
else
  deployops=(deployops)
fi

require() {
  # DEP-6: the guide's required parameters, from the environment.
  local missing=()
  for name in "$@"; do
    [ -n "${!name:-}" ] || missing+=("$name")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "error: missing required variable(s): ${missing[*]}" >&2
    echo "  fix: e.g. VERSION=1.4.0 CLUSTER=my-cluster SERVICE=web TASK_DEFINITION=web $0" >&2
    exit 2
  fi
}
