"""DR-4 fault: a restore killed with SIGKILL in the middle of restoring resumes from its
journal (``deployops restore resume``), takes over its own stale lock, finishes, and the
running primary was never touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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
        ops = dr_root / ".deployops" / "operations"

        def restoring() -> bool:
            for j in ops.glob("rst-*.json") if ops.is_dir() else []:
                d = json.loads(j.read_text())
                if d["intents"][1] is not None:  # RestoreDatabase has started
                    return True
            return False

        LocalPlatformHandle.wait_until(restoring, timeout_s=60, what="restore step started")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.stdout and proc.stderr
        proc.stdout.close()
        proc.stderr.close()
        (journal,) = list(ops.glob("rst-*.json"))
        op = journal.stem
        assert json.loads(journal.read_text())["status"] == "running"

        resumed = _cli(cfg, "-o", "json", "restore", "resume", op)
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
