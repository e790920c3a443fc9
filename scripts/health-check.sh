#!/usr/bin/env bash
# Checks a service's health through its production listener (DEP-5, DEP-7).
#   SERVICE=web ENVIRONMENT=staging scripts/health-check.sh
# Exit 0 when every container is healthy and the listener answers, 1 otherwise.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
require SERVICE ENVIRONMENT
args=()
[ -n "${DEPLOYOPS_CONFIG:-}" ] && args+=(-c "$DEPLOYOPS_CONFIG")
exec "${deployops[@]}" "${args[@]}" -e "$ENVIRONMENT" health --service "$SERVICE"
