"""`make demo`: the main job of deployops on the embedded local platform, start to finish.

1. start the local platform (HAProxy, supervised replicas, metrics collector);
2. deploy the sample service 1.0.0 (first deployment: four replicas behind the listener);
3. under a steady background load, deploy 1.1.0 blue-green and count failed requests;
4. deploy 1.2.0-bad, which fails 20 % of requests: deployops sees it while observing and
   flips traffic back to 1.1.0 (exit code 3, "rolled back");
5. deploy 1.3.0-broken, which never turns healthy: it stops before the switch (exit code 1);
6. print what happened.

The guide's waits are shortened in examples/demo/deployops.yaml (health 30 s, stability 8 s) so
the run takes about a minute. The platform stays up afterwards: `deployops -c
examples/demo/deployops.yaml local status`, then `... local down`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from deployops.drivers.local.load import Load

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "demo" / "deployops.yaml"
BIN = Path(sys.executable).parent / "deployops"
PROD = "http://127.0.0.1:18080/"


def cli(*args: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN), "-c", str(CONFIG), "-e", "demo", *args]
    print(f"\n$ deployops {' '.join(args)}", flush=True)
    proc = subprocess.run(
        cmd,
        text=True,
        stdout=subprocess.PIPE if quiet else None,
        stderr=None,
        check=False,
    )
    if check and proc.returncode != 0:
        sys.exit(f"demo: `deployops {' '.join(args)}` exited {proc.returncode}")
    return proc


def latest() -> dict[str, object]:
    out = cli("-o", "json", "deployments", "list", "-n", "1", quiet=True)
    return json.loads(out.stdout)[0]  # type: ignore[no-any-return]


def main() -> None:
    os.chdir(ROOT)
    started = time.monotonic()
    cli("local", "up")
    cli("deploy", "--version", "1.0.0", "--force")

    load = Load(PROD, workers=4, max_seconds=240).start()
    time.sleep(1.0)
    cli("deploy", "--version", "1.1.0", "--force")
    ok, failed, versions = load.snapshot()
    good = latest()
    print(f"\nblue-green 1.0.0 -> 1.1.0 under load: {ok} requests served, {failed} failed")
    print(f"  answered by version: {versions}")

    bad = cli("deploy", "--version", "1.2.0-bad", check=False)
    _, failed2, _ = load.snapshot()
    print(
        f"\n1.2.0-bad exited {bad.returncode} (3 = rolled back); "
        f"{failed2 - failed} failed requests during it (20 % of what reached it)"
    )
    broken = cli("deploy", "--version", "1.3.0-broken", check=False)
    load.stop()
    ok3, failed3, versions3 = load.snapshot()
    print(f"\n1.3.0-broken exited {broken.returncode} (1 = failed before the switch)")

    cli("deployments", "list", "-n", "5")
    cli("deployments", "show", str(good["id"]))
    cli("health", "--service", "web")
    print(
        "\nsummary:"
        f"\n  requests served under load: {ok3 + failed3} ({failed3} failed)"
        f"\n  failed during the 1.0.0 -> 1.1.0 blue-green switch: {failed}"
        f"\n  answered by version: {versions3}"
        f"\n  whole demo: {time.monotonic() - started:.0f}s"
        f"\nthe platform is still up: `.venv/bin/deployops -c {CONFIG.relative_to(ROOT)} "
        "-e demo local status` (and `local down` to stop it)"
    )
    if failed:
        sys.exit("demo: requests failed during the blue-green switch")
    if bad.returncode != 3 or broken.returncode != 1:
        sys.exit("demo: the failing versions did not end as expected")


if __name__ == "__main__":
    main()
