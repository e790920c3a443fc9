#!/usr/bin/env bash
# Rolls back a deployment (the guide's section 4, RB-3), with the guide's arguments:
#   scripts/rollback.sh <deployment-id> [--dry-run]
#   scripts/rollback.sh dep-20261129-174501-7f3a            # does it
#   scripts/rollback.sh dep-20261129-174501-7f3a --dry-run  # prints the checks, changes nothing
# The older form still works: DEPLOYMENT_ID=dep-... DRY_RUN=1 scripts/rollback.sh
# Optional: ENVIRONMENT, DEPLOYOPS_CONFIG. Exit 3 means "rolled back".
set -euo pipefail
source "$(dirname "$0")/_common.sh"
id="${DEPLOYMENT_ID:-}"
dry="${DRY_RUN:-0}"
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    -*) echo "error: unknown option $arg" >&2
        echo "  fix: scripts/rollback.sh <deployment-id> [--dry-run]" >&2; exit 2 ;;
    *) if [ -n "$id" ] && [ "$id" != "$arg" ]; then
         echo "error: one deployment id, not two ($id, $arg)" >&2; exit 2
       fi
       id="$arg" ;;
  esac
done
if [ -z "$id" ]; then
  echo "error: missing the deployment id (DEPLOYMENT_ID)" >&2
  echo "  fix: scripts/rollback.sh <deployment-id> [--dry-run]; list them with: deployops deployments list" >&2
  exit 2
fi
args=()
[ -n "${DEPLOYOPS_CONFIG:-}" ] && args+=(-c "$DEPLOYOPS_CONFIG")
[ -n "${ENVIRONMENT:-}" ] && args+=(-e "$ENVIRONMENT")
args+=(rollback "$id")
[ "$dry" = 1 ] && args+=(--dry-run)
exec "${deployops[@]}" "${args[@]}"
