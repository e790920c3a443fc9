"""A planted secret value appears nowhere but in the replicas' environment (SEC-1, SEC-4).

The value is stored once (``secrets set`` from stdin), then the real CLI deploys with it on the
local platform, deploys a crashing version (a failure with its report), renders and shows the
configuration, prints status, makes errors, rotates it, rolls back, and runs the controller
(which rotates what is due). Then every output, every file under the project (platform logs,
HAProxy files, any incident report, the encrypted store, the state database holding events,
steps, audit entries and rotations) is searched for the value, raw, base64 and JSON-escaped:
0 occurrences. (An automatic rollback's incident report needs traffic failing after the switch;
tests/e2e/test_rollback_e2e.py covers that report, this test does not produce one.)
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.fixtures_local import ENV, free_port, write_project

# about 3 minutes of real CLI runs on 2 cores: more than the default 300 s when the machine is busy
pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

DEPLOYOPS = Path(sys.executable).parent / "deployops"
PLANT = "PLANTED-hygiene-7f3a9c-Zq81"


def _run(root: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOYOPS_", "AWS_"))}
    return subprocess.run(
        [str(DEPLOYOPS), *args],
        cwd=root,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_sec1_planted_secret_value_is_in_no_output_log_event_audit_or_report() -> None:
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="dops-"))
    path = write_project(root, version_environment={"1.1.0": {"FAULT_CRASH_ON_START": "1"}})
    doc = yaml.safe_load(path.read_text())
    doc["secrets"] = {"stores": {ENV: {"type": "encrypted-file"}}}
    # no traffic here: a rule without data is accepted rather than probed with synthetic load
    doc["rollback"] = {"insufficient_data": {"action": "accept"}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    envs = root / "config" / "environments"
    envs.mkdir(parents=True)
    (envs / f"{ENV}.yaml").write_text(
        "APP_NAME: demo\n"
        "DB_USER: secret://database-password#username\n"
        "DB_PASSWORD: secret://database-password#password\n"
    )
    outputs: list[str] = []

    def run(*args: str, stdin: str = "", ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = _run(root, *args, stdin=stdin)
        outputs.append(f"$ deployops {' '.join(args)}\n{proc.stdout}\n{proc.stderr}")
        if ok:
            assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc

    run("secrets", "keygen")
    run(
        "secrets",
        "set",
        "database-password",
        stdin=json.dumps({"username": "app_a", "password": PLANT}),
    )
    up = False
    try:
        run("local", "up")
        up = True
        run("deploy", "--version", "1.0.0")
        failed = run("deploy", "--version", "1.1.0", ok=False)
        assert failed.returncode in (1, 3)
        run("config", "render", "-e", ENV)
        run("config", "render", "-e", ENV, "--format", "json")
        run("config", "show", "-e", ENV)
        run("config", "validate", "-e", ENV)
        run("secrets", "status")
        run("secrets", "status", "-o", "json")
        run("deployments", "list", "-o", "json")
        assert run("secrets", "rotate", "nope", ok=False).returncode == 2
        assert run("deploy", "--version", "not-a-version", ok=False).returncode == 2
        run("secrets", "rotate", "database-password")
        run("deploy", "--version", "1.0.1")  # replicas start with the rotated value
        latest = json.loads(run("deployments", "list", "-o", "json").stdout)[0]
        back = run("rollback", latest["id"], ok=False)  # manual rollback: an incident report
        assert back.returncode in (0, 3), back.stderr
        # the controller rotates what is due (the three never-rotated secrets)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOYOPS_", "AWS_"))}
        serve = subprocess.Popen(
            [str(DEPLOYOPS), "serve", "--port", str(port), "--tick", "0.2"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status = json.loads(run("secrets", "status", "-o", "json").stdout)
                if not any(s["due"] for s in status["secrets"]):
                    break
                time.sleep(0.5)
            assert not any(s["due"] for s in status["secrets"]), status
        finally:
            serve.send_signal(signal.SIGTERM)
            out, err = serve.communicate(timeout=30)
            outputs.append(f"$ deployops serve\n{out}\n{err}")
        audit = json.loads(run("audit", "list", "--limit", "500", "-o", "json").stdout)
        actors = {(e["actor"], e["action"]) for e in audit}
        assert ("controller", "secret.rotate") in actors
        run("audit", "verify")
    finally:
        if up:
            run("local", "down")

    needles = {
        PLANT.encode(),
        base64.b64encode(PLANT.encode()),
        json.dumps(PLANT).encode()[1:-1],
    }
    hits = [o[:80] for o in outputs if PLANT in o]
    files = 0
    for file in root.rglob("*"):
        if file.is_file() and not file.is_socket():
            files += 1
            data = file.read_bytes()
            hits += [str(file) for n in needles if n in data]
    shutil.rmtree(root, ignore_errors=True)
    assert files > 10  # logs, state, reports, the store were all searched
    assert hits == [], hits
