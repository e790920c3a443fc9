"""DR-4 fault: a restore killed with SIGKILL in the middle of restoring resumes from the
state store (``deployops resume``, the one operation runner), takes over its own stale lock,
finishes, and the running primary was never touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deployops.errors import DriverError
from deployops.store import StateStore
from tests.fixtures_local import LocalPlatformHandle, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEPLOYOPS = str(Path(sys.executable).parent / "deployops")


def _cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DEPLOYOPS, "-c", str(cfg), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_restore_killed_during_the_restore_step_resumes_and_finishes(dr_root: Path) -> None:
    cfg = dr_root / "deployops.yaml"
    doc = {
        "project": "shop",
        "environments": {"development": {"platform": "local"}},
        "services": {"web": {"port": free_port(), "command": ["python3", "app.py"]}},
        "backups": {"database": {"port": free_port()}},
    }
    cfg.write_text(yaml.safe_dump(doc))
    try:
        assert _cli(cfg, "db", "start").returncode == 0
        assert _cli(cfg, "backup", "run", "--target", "database").returncode == 0
        proc = subprocess.Popen(
            [DEPLOYOPS, "-c", str(cfg), "restore", "db", "--no-repoint"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        store_url = f"sqlite:///{dr_root / '.deployops' / 'state.db'}"
        found: list[str] = []

        def restoring() -> bool:
            if not (dr_root / ".deployops" / "state.db").is_file():
                return False
            store = StateStore.open(store_url, migrate=False)
            try:
                for op in store.list_operations(kinds=["restore"]):
                    steps = store.steps_for(op.id)
                    if any(s.name == "RestoreDatabase" for s in steps):  # it has started
                        found.append(op.id)
                        return True
                return False
            except DriverError:
                return False  # the store is still being created
            finally:
                store.close()

        LocalPlatformHandle.wait_until(restoring, timeout_s=60, what="restore step started")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.stdout and proc.stderr
        proc.stdout.close()
        proc.stderr.close()
        op = found[0]
        listed = json.loads(_cli(cfg, "-o", "json", "deployments", "list").stdout)
        assert [(d["id"], d["kind"], d["status"]) for d in listed] == [(op, "restore", "running")]

        resumed = _cli(cfg, "-o", "json", "resume", op)
        assert resumed.returncode == 0, resumed.stderr
        out = json.loads(resumed.stdout)
        assert out["status"] == "succeeded"
        assert all(r is not None for r in out["results"])
        status = json.loads(_cli(cfg, "-o", "json", "db", "status").stdout)
        by = {i["id"]: i for i in status["instances"]}
        assert status["primary"] == "primary-1"  # --no-repoint: the primary stays
        assert by["primary-1"]["running"]
        assert by[op]["running"]
        locks = _cli(cfg, "-o", "json", "lock", "list")
        assert json.loads(locks.stdout) == []  # released after the resume
    finally:
        _cli(cfg, "db", "stop")
