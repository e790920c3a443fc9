#!/usr/bin/env bash
# Rolls back a deployment (the guide's section 4, RB-3).
#   DEPLOYMENT_ID=dep-20261129-174501-7f3a scripts/rollback.sh            # does it
#   DRY_RUN=1 DEPLOYMENT_ID=dep-... scripts/rollback.sh                    # prints the checks
# Optional: ENVIRONMENT, DEPLOYOPS_CONFIG. Exit 3 means "rolled back".
set -euo pipefail
source "$(dirname "$0")/_common.sh"
require DEPLOYMENT_ID
args=()
[ -n "${DEPLOYOPS_CONFIG:-}" ] && args+=(-c "$DEPLOYOPS_CONFIG")
[ -n "${ENVIRONMENT:-}" ] && args+=(-e "$ENVIRONMENT")
args+=(rollback "$DEPLOYMENT_ID")
[ "${DRY_RUN:-0}" = 1 ] && args+=(--dry-run)
exec "${deployops[@]}" "${args[@]}"
