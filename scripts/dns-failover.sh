#!/usr/bin/env bash
# Points the name clients use at the other site (DR-5, DR-6), with the guide's arguments:
#   scripts/dns-failover.sh --hosted-zone-id <zone-id> --change-batch file://dns-failover.json
#   scripts/dns-failover.sh --record web-prod --target web-green      # local: the front listener
#   scripts/dns-failover.sh ... --dry-run                             # show the change only
# On AWS it is the Route 53 record change (change_resource_record_sets), read back.
# Optional: ENVIRONMENT (default production), DEPLOYOPS_CONFIG.
# Exit codes are deployops': 0 moved, 1 failed, 2 bad input, 4 locked.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
args=()
[ -n "${DEPLOYOPS_CONFIG:-}" ] && args+=(-c "$DEPLOYOPS_CONFIG")
args+=(-e "${ENVIRONMENT:-production}" dr dns-failover)
while [ $# -gt 0 ]; do
  case "$1" in
    --hosted-zone-id|--change-batch|--record|--target)
      [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }
      args+=("$1" "$2"); shift 2 ;;
    --dry-run) args+=("$1"); shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1" >&2
       echo "  fix: scripts/dns-failover.sh --hosted-zone-id <zone-id> --change-batch file://dns-failover.json" >&2
       exit 2 ;;
  esac
done
exec "${deployops[@]}" "${args[@]}"
