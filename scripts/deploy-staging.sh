#!/usr/bin/env bash
# Deploys VERSION of SERVICE to staging, blue-green (the guide's section 2, DEP-5/DEP-6).
#   VERSION=1.4.0 CLUSTER=my-cluster SERVICE=web TASK_DEFINITION=web scripts/deploy-staging.sh
# Optional: DEPLOYOPS_CONFIG (path to deployops.yaml), EXTRA_ARGS (e.g. "--dry-run").
# Exit codes are deployops': 0 deployed, 1 failed, 2 bad input, 3 rolled back, 4 locked.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
require VERSION CLUSTER SERVICE TASK_DEFINITION
config=()
[ -n "${DEPLOYOPS_CONFIG:-}" ] && config=(-c "$DEPLOYOPS_CONFIG")
# shellcheck disable=SC2086
exec "${deployops[@]}" "${config[@]}" -e staging deploy \
  --version "$VERSION" --cluster "$CLUSTER" --service "$SERVICE" \
  --task-definition "$TASK_DEFINITION" ${EXTRA_ARGS:-}
