"""CHK-2 on the real local platform under load: the during-deploy checklist is judged by the
engine on the same measurements as the rollback rules, separately from them. A release with
3 % errors breaks no rollback rule (5 %) but the checklist's 1 % limit: it is rolled back
(exit 3); a release within the limits completes; with ``on_failure: hold`` the deployment waits
for ``deployops checklist decide`` and honours it, and without a decision it rolls back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployops.clock import SystemClock
from deployops.config.project import ProjectConfig, load_project
from deployops.drivers.local import control
from deployops.drivers.local.load import Load
from deployops.store import StateStore
from tests.fixtures_local import ENV
from tests.fixtures_local import write_project as write_deployops

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

DEPLOYOPS = str(Path(sys.executable).parent / "deployops")
PRE_OFF = {
    name: {"enabled": False}
    for name in (
        "unit-tests", "coverage", "e2e-tests", "lint", "security-scan", "code-review",
        "migration-plan", "rollback-plan", "capacity-check", "deployment-notice", "on-call",
    )
}  # fmt: skip
POST_QUICK = {
    "error-logs": {"enabled": False},
    "performance": {"enabled": False},
    "database": {"enabled": False},
}


def _project(root: Path, during: dict[str, Any]) -> ProjectConfig:
    config = write_deployops(
        root,
        version_environment={"2.1.0": {"FAULT_ERROR_RATE": "0.03"}},
        blue_green={
            "health_timeout": 20,
            "stability_window": 6,
            "sample_interval": 0.5,
            "smoke_checks": [{"path": "/health", "status": 200}],
        },
    )
    doc = yaml.safe_load(config.read_text())
    # The RB-1 rules on 1 s periods, as the other end-to-end tests run them: 5 % errors.
    doc["rollback"] = {"period": "1s", "min_requests": 3, "rules": {"error-rate": {"window": "3s"}}}
    doc["checklist"] = {"pre": PRE_OFF, "during": during, "post": POST_QUICK}
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_project(config)


def _cli(p: ProjectConfig, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_argv(p, *args), capture_output=True, text=True, timeout=180,
                          env=_env(), check=False)  # fmt: skip


def _argv(p: ProjectConfig, *args: str) -> list[str]:
    return [DEPLOYOPS, "-c", str(p.path), "-e", ENV, *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOYOPS_")}
    env.update(DEPLOYOPS_USER="dana", DEPLOYOPS_ROLE="deployer")
    return env


# CPU and memory of this shared 2-core machine under load say nothing about the release:
# they warn here, so that each test is about the limit it names.
MACHINE_WARN = {"cpu": {"on_failure": "warn"}, "memory": {"on_failure": "warn"}}


@pytest.fixture
def platform() -> Iterator[Any]:
    roots: list[tuple[ProjectConfig, Path]] = []

    def up(during: dict[str, Any]) -> ProjectConfig:
        root = Path(tempfile.mkdtemp(prefix="dops-chk2-"))
        p = _project(root, {**MACHINE_WARN, **during})
        control.up(p, ENV, clock=SystemClock())
        roots.append((p, root))
        return p

    yield up
    for p, root in roots:
        report = control.down(p, ENV, clock=SystemClock())
        shutil.rmtree(root, ignore_errors=True)
        assert report["killed_leftovers"] == [], report


def _url(p: ProjectConfig) -> str:
    return f"http://127.0.0.1:{p.services['web'].port}/"


def _deployment(p: ProjectConfig, version: str) -> dict[str, Any]:
    out = _cli(p, "-o", "json", "deployments", "list", "-n", "50")
    return next(
        d for d in json.loads(out.stdout) if d["version"] == version and d["kind"] == "deploy"
    )


def _during(p: ProjectConfig, dep_id: str) -> dict[str, Any]:
    shown = json.loads(_cli(p, "-o", "json", "checklist", "show", dep_id).stdout)
    return {i["item"]: i for i in shown["gates"][1]["items"]}


def test_three_percent_errors_roll_back_by_the_checklist_and_a_good_release_completes(
    platform: Any,
) -> None:
    p = platform({})
    assert _cli(p, "deploy", "--version", "1.0.0").returncode == 0
    with Load(_url(p), workers=3, max_seconds=120):
        bad = _cli(p, "deploy", "--version", "2.1.0")
    assert bad.returncode == 3, bad.stderr
    assert "error rate below 1 %" in bad.stderr
    dep = _deployment(p, "2.1.0")
    assert dep["status"] == "rolled_back"
    detail = json.loads(_cli(p, "-o", "json", "deployments", "show", dep["id"]).stdout)
    (decision,) = [d for d in detail["decisions"] if d["action"] == "rollback"]
    assert decision["rule"] == "checklist:error-rate"
    assert 1.0 <= decision["evidence"]["value"] < 5.0  # under the 5 % rollback rule
    items = _during(p, dep["id"])
    assert items["error-rate"]["status"] == "failed"
    assert items["task-definition-registered"]["status"] == "passed"
    assert items["traffic-switched"]["status"] == "passed"

    with Load(_url(p), workers=3, max_seconds=120):
        good = _cli(p, "deploy", "--version", "1.1.0")
    assert good.returncode == 0, good.stderr
    dep = _deployment(p, "1.1.0")
    items = _during(p, dep["id"])
    assert items["error-rate"]["status"] == "passed", items["error-rate"]
    assert items["error-rate"]["evidence"]["value"] < 1.0
    for milestone in ("task-definition-registered", "containers-started", "health-passed",
                      "traffic-switched"):  # fmt: skip
        assert items[milestone]["status"] == "passed", items[milestone]


def _wait_held(p: ProjectConfig, version: str, proc: subprocess.Popen[str]) -> str:
    """The held deployment's id, read from the state store (a CLI call per poll is slow on a
    loaded machine and the hold has a timeout)."""
    store = StateStore.open(p.state_url())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            for rec in store.list_deployments(status=["running"]):
                if rec.version != version:
                    continue
                entries = store.checklist_entries(deployment_id=rec.id, stage="during")
                if any(e.item == "error-rate" and e.status == "held" for e in entries):
                    return rec.id
            time.sleep(0.2)
    finally:
        store.close()
    raise AssertionError("the deployment was never held")


def test_hold_waits_for_a_decision_and_honours_it_and_times_out_into_a_rollback(
    platform: Any,
) -> None:
    p = platform({"error-rate": {"on_failure": "hold", "hold_timeout": "120s"}})
    assert _cli(p, "deploy", "--version", "1.0.0").returncode == 0
    with Load(_url(p), workers=3, max_seconds=150):
        proc = subprocess.Popen(
            _argv(p, "deploy", "--version", "2.1.0"),
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        dep_id = _wait_held(p, "2.1.0", proc)
        early = _cli(p, "checklist", "decide", dep_id, "--continue", "--rollback")
        assert early.returncode == 2
        decided = _cli(p, "checklist", "decide", dep_id, "--continue", "--reason", "known spike")
        assert decided.returncode == 0, decided.stderr + json.dumps(
            json.loads(_cli(p, "-o", "json", "deployments", "show", dep_id).stdout)["decisions"]
        )
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    items = _during(p, dep_id)
    assert items["error-rate"]["status"] == "warned"
    assert "let through by a person's decision" in items["error-rate"]["summary"]
    again = _cli(p, "checklist", "decide", dep_id, "--rollback")
    assert again.returncode == 2
    assert "succeeded: there is nothing to decide" in again.stderr

    q = platform({"error-rate": {"on_failure": "hold", "hold_timeout": "2s"}})
    assert _cli(q, "deploy", "--version", "1.0.0").returncode == 0
    with Load(_url(q), workers=3, max_seconds=120):
        out = _cli(q, "deploy", "--version", "2.1.0")
    assert out.returncode == 3, out.stderr
    assert "no decision within 2s" in out.stderr
