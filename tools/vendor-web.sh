#!/usr/bin/env bash
# Vendors the dashboard's chart library (Chart.js) into the package and installs axe-core for
# the browser tests, from the versions pinned in tools/web-vendor/package-lock.json (npm ci).
# Nothing to run for users: `make deps` (and so `make test` / `make demo`) runs this.
set -euo pipefail
cd "$(dirname "$0")/web-vendor"
dest=../../src/deployops/web/static/vendor
want=$(node -p "require('./package-lock.json').packages['node_modules/chart.js'].version" 2>/dev/null || echo none)
have=$(cat "$dest/chart.version" 2>/dev/null || echo missing)
if [ "$want" = "$have" ] && [ -f node_modules/axe-core/axe.min.js ] && [ -f "$dest/chart.umd.min.js" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is needed to vendor the dashboard's charts: run tools/system-deps.sh as root" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error >/dev/null
mkdir -p "$dest"
cp node_modules/chart.js/dist/chart.umd.min.js "$dest/chart.umd.min.js"
cp node_modules/chart.js/LICENSE.md "$dest/chart.LICENSE.md"
node -p "require('./node_modules/chart.js/package.json').version" > "$dest/chart.version"
