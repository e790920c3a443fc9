#!/usr/bin/env bash
# Restores the database into a NEW instance and repoints the application (DR-4, DR-6).
#   scripts/restore-db.sh                       # the newest backup plus the archived WAL
#   scripts/restore-db.sh <snapshot-id>         # a backup from: deployops backup list
#   scripts/restore-db.sh --to-time 2026-03-01T09:41:00Z   # point in time (DR-2)
#   scripts/restore-db.sh ... --dry-run         # print the plan, change nothing
# Optional: ENVIRONMENT (default production), DEPLOYOPS_CONFIG.
# The running database is untouched until the restored one is verified.
# Exit codes are deployops': 0 restored, 1 failed, 2 bad input, 4 locked.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
args=()
[ -n "${DEPLOYOPS_CONFIG:-}" ] && args+=(-c "$DEPLOYOPS_CONFIG")
args+=(-e "${ENVIRONMENT:-production}" restore db)
while [ $# -gt 0 ]; do
  case "$1" in
    --to-time) [ $# -ge 2 ] || { echo "error: --to-time needs a time" >&2; exit 2; }
               args+=(--to-time "$2"); shift 2 ;;
    --dry-run|--no-repoint) args+=("$1"); shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) echo "error: unknown option $1" >&2
        echo "  fix: scripts/restore-db.sh [<snapshot-id> | --to-time TIME] [--dry-run]" >&2; exit 2 ;;
    *) args+=(--snapshot "$1"); shift ;;
  esac
done
exec "${deployops[@]}" "${args[@]}"
