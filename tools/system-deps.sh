#!/usr/bin/env bash
# Installs the Debian packages deployops' local platform and tests use, if missing.
# As root it runs apt-get (retrying while another install holds the dpkg lock);
# otherwise it prints the exact command to run.
set -euo pipefail

want=()
command -v haproxy >/dev/null 2>&1 || want+=(haproxy)
command -v pgbackrest >/dev/null 2>&1 || want+=(pgbackrest)
command -v restic >/dev/null 2>&1 || want+=(restic)
[ -x /usr/lib/postgresql/15/bin/initdb ] || want+=(postgresql-15)
# The dashboard's browser tests drive Debian's Chromium (Playwright cannot download one here);
# npm vendors the chart library and axe-core (tools/vendor-web.sh).
command -v chromium >/dev/null 2>&1 || want+=(chromium)
command -v npm >/dev/null 2>&1 || want+=(npm)
if [ "${WITH_BROWSER:-0}" = 1 ]; then
  command -v chromedriver >/dev/null 2>&1 || want+=(chromium-driver)
fi
if [ "${WITH_BENCH:-0}" = 1 ]; then
  command -v wrk >/dev/null 2>&1 || want+=(wrk)
fi

if [ ${#want[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "missing system packages: ${want[*]}" >&2
  echo "run as root: apt-get update && apt-get install -y ${want[*]}" >&2
  exit 1
fi

apt_retry() {
  local n=0
  until DEBIAN_FRONTEND=noninteractive "$@"; do
    n=$((n + 1))
    if [ $n -ge 30 ]; then
      echo "apt-get kept failing (is another install holding the dpkg lock?)" >&2
      return 1
    fi
    echo "apt-get busy or failed; retrying in 10s ($n/30)" >&2
    sleep 10
  done
}

echo "installing: ${want[*]}" >&2
apt_retry apt-get update -qq
apt_retry apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
# The Debian package starts a system-wide HAProxy on :80; deployops runs its own.
if systemctl is-active haproxy >/dev/null 2>&1; then systemctl stop haproxy || true; fi
