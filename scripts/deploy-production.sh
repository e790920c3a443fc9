#!/usr/bin/env bash
# Deploys VERSION of SERVICE to production, blue-green (the guide's section 2, DEP-5/DEP-6).
#   VERSION=1.4.0 CLUSTER=my-cluster SERVICE=web TASK_DEFINITION=web scripts/deploy-production.sh
# Optional: DEPLOYOPS_CONFIG (path to deployops.yaml), EXTRA_ARGS (e.g. "--dry-run").
# Exit codes are deployops': 0 deployed, 1 failed, 2 bad input, 3 rolled back, 4 locked.
#
# Disaster-recovery mode (DR-6), after the database was restored or failed over:
#   scripts/deploy-production.sh disaster-recovery
# starts the application's database if it is down, then redeploys the last version that
# succeeded in production (or VERSION if given) so every replica uses the current primary.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
if [ "${1:-}" = "disaster-recovery" ]; then
  config=()
  [ -n "${DEPLOYOPS_CONFIG:-}" ] && config=(-c "$DEPLOYOPS_CONFIG")
  "${deployops[@]}" "${config[@]}" -e production db start
  version="${VERSION:-}"
  if [ -z "$version" ]; then
    version="$("${deployops[@]}" "${config[@]}" -e production -o json deployments list -n 50 |
      python3 -c 'import json,sys
rows=[r for r in json.load(sys.stdin) if r.get("status")=="succeeded"]
print(rows[0]["version"] if rows else "")')"
  fi
  if [ -z "$version" ]; then
    echo "error: no succeeded production deployment to redeploy" >&2
    echo "  fix: VERSION=1.4.0 scripts/deploy-production.sh disaster-recovery" >&2
    exit 2
  fi
  echo "disaster recovery: redeploying $version onto the current database" >&2
  exec "${deployops[@]}" "${config[@]}" -e production deploy --version "$version"
elif [ $# -gt 0 ]; then
  echo "error: unknown mode $1" >&2
  echo "  fix: scripts/deploy-production.sh disaster-recovery (or no argument)" >&2
  exit 2
fi
require VERSION CLUSTER SERVICE TASK_DEFINITION
config=()
[ -n "${DEPLOYOPS_CONFIG:-}" ] && config=(-c "$DEPLOYOPS_CONFIG")
# shellcheck disable=SC2086
exec "${deployops[@]}" "${config[@]}" -e production deploy \
  --version "$VERSION" --cluster "$CLUSTER" --service "$SERVICE" \
  --task-definition "$TASK_DEFINITION" ${EXTRA_ARGS:-}
