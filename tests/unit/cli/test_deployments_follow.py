"""``deployops deployments show ID --follow`` (CHK-2: the deployment log watched live): the
events a running deployment writes appear as they are stored, and the command ends with the
deployment, its exit code the outcome (3 for a rollback). Runs the real console script
against a store another process writes to, as a deploy would."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from deployops.config.project import load_project
from deployops.store import DeploymentRecord, EventRecord, StateStore

DEPLOYOPS = Path(sys.executable).parent / "deployops"
DEP = "dep-20261202-061500-ab12"


def _project(tmp_path: Path) -> tuple[Path, StateStore]:
    folder = tmp_path / "shop"
    folder.mkdir()
    subprocess.run([DEPLOYOPS, "init"], cwd=folder, check=True, capture_output=True)
    store = StateStore.open(load_project(folder / "deployops.yaml").state_url())
    now = datetime.now(tz=UTC)
    store.create_deployment(
        DeploymentRecord(
            id=DEP,
            environment="staging",
            service="web",
            version="1.4.0",
            previous_version="1.3.0",
            strategy="blue-green",
            status="running",
            created_at=now,
            updated_at=now,
        )
    )
    store.add_event(
        EventRecord(ts=now, kind="deploy.started", message="deploying 1.4.0", deployment_id=DEP)
    )
    return folder, store


def _wait_for(
    proc: subprocess.Popen[str], text: str, lines: list[str], timeout: float = 30
) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return
    raise AssertionError(f"{text!r} never printed; got {lines}")


def test_follow_prints_new_events_and_exits_with_the_outcome(tmp_path: Path) -> None:
    folder, store = _project(tmp_path)
    proc = subprocess.Popen(
        [DEPLOYOPS, "deployments", "show", DEP, "--follow"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        _wait_for(proc, "deploying 1.4.0", lines)
        store.add_event(
            EventRecord(
                ts=datetime.now(tz=UTC),
                kind="observe.progress",
                message="error-rate 7.2 % > 5 % (2 of 3 periods), 40 s left",
                level="warning",
                deployment_id=DEP,
            )
        )
        _wait_for(proc, "error-rate 7.2 %", lines)
        store.update_deployment(DEP, status="rolled_back", finished_at=datetime.now(tz=UTC))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        store.close()
    text = "".join(lines) + out
    assert "deploying 1.4.0" in text  # what was there before is shown first
    assert "ended: rolled_back" in text
    assert proc.returncode == 3, err


def test_follow_json_is_one_object_per_line_and_ends_on_success(tmp_path: Path) -> None:
    folder, store = _project(tmp_path)
    proc = subprocess.Popen(
        [DEPLOYOPS, "-o", "json", "deployments", "show", DEP, "-f"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert (first["id"], first["status"]) == (DEP, "running")
        store.add_event(
            EventRecord(
                ts=datetime.now(tz=UTC),
                kind="deploy.succeeded",
                message="web 1.4.0 is live",
                deployment_id=DEP,
            )
        )
        store.update_deployment(DEP, status="succeeded", finished_at=datetime.now(tz=UTC))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        store.close()
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["message"] for e in events] == ["web 1.4.0 is live"]
    assert proc.returncode == 0, err
