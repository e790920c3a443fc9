"""The watch after the switch on the real local platform (HAProxy, supervised replicas, the
metrics collector) under ``deployops serve``: the rollback rules keep judging the live version
after its stability window (RB-1), a release that degrades later is rolled back by redeploying
the previous version (RB-2), a healthy one's watch ends clean, a newer deployment supersedes
it. (A controller killed mid-rollback: tests/faults/test_watch_after_crash.py.)

Real clock with the durations compressed: a 3 s stability window, 1 s rule periods, a release
that starts failing half of its requests some seconds after its window ("2 minutes after" in
production terms). Every process started here is stopped here."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from deployops.drivers.local.load import Load
from deployops.store import StateStore
from deployops.store.queries import watch_of
from tests.e2e.conftest import FAST_RULES, FAULTS, Project
from tests.e2e.test_controller_e2e import Serve, platform_project, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Half of the requests fail from 14 s after a replica started: its deploy (start, health,
# smoke checks, switch, the 3 s window, blue to 0) is over by then.
DEGRADING = "1.3.0"
DEGRADE_AFTER_S = 14
VERSIONS = {
    **FAULTS,
    DEGRADING: {"FAULT_ERROR_RATE": "0.5", "FAULT_DEGRADE_AFTER_S": str(DEGRADE_AFTER_S)},
}
BLUE_GREEN = {
    "health_timeout": 20,
    "stability_window": 3,
    "sample_interval": 0.5,
    "smoke_checks": [{"path": "/health", "status": 200}, {"path": "/", "status": 200}],
}


@contextmanager
def serving(project: Project) -> Iterator[Serve]:
    """``deployops serve`` for the block; a clean stop after it. Its start is given time: on
    a machine shared with other test runs it can take tens of seconds."""
    serve = Serve(project, project.path.parent)
    try:
        serve.wait_ready(timeout_s=120)
        yield serve
    finally:
        serve.stop()
    assert serve.exit_code == 0, (serve.exit_code, serve.stderr()[-3000:])


def show(project: Project, deployment_id: str) -> dict[str, Any]:
    out = project.cli("-o", "json", "deployments", "show", deployment_id)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def deploy(project: Project, version: str) -> str:
    out = project.cli("-o", "json", "deploy", "--version", version)
    assert out.returncode == 0, (version, out.stdout[-2000:], out.stderr[-2000:])
    ids = [json.loads(line).get("deployment_id") for line in out.stdout.splitlines() if line]
    found = next(i for i in reversed(ids) if i)
    return str(found)


def watch_state(store: StateStore, deployment_id: str) -> str:
    op = store.get_operation(deployment_id)
    assert op is not None
    return str(watch_of(op).get("state", ""))


def probe(project: Project, n: int = 20) -> list[tuple[int, str]]:
    url = f"http://127.0.0.1:{project.config.services['web'].port}/"
    out = []
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        for _ in range(n):
            r = client.get(url)
            out.append((r.status_code, str(r.json().get("version", ""))))
    return out


def prod_url(project: Project) -> str:
    return f"http://127.0.0.1:{project.config.services['web'].port}/"


def test_release_degrading_after_its_window_is_rolled_back_by_the_watch_rb1_rb2() -> None:
    """1.3.0 passes its 3 s window, then fails half of its requests: the controller's watch
    decides on the error-rate rule, redeploys 1.0.0 (blue was at 0), and the deployment ends
    rolled back with the decision, the notification and the incident report stored; traffic is
    on 1.0.0 again."""
    rollback = {**FAST_RULES, "watch_after_switch": "5m"}
    with platform_project(
        version_environment=VERSIONS, blue_green=BLUE_GREEN, rollback=rollback
    ) as (project, store):
        deploy(project, "1.0.0")
        live = deploy(project, DEGRADING)
        assert project.prod_target_group() == "web-green"
        assert project.service("web-blue")["desired"] == 0  # blue scaled to 0 after the window
        watch = show(project, live)["watch"]
        assert (watch["state"], watch["under_watch"]) == ("watching", True)
        started = time.monotonic()
        with Load(prod_url(project), workers=2, max_seconds=120) as load, serving(project):
            wait_for(
                lambda: watch_state(store, live) not in ("watching", "rolling_back"),
                timeout_s=100,
                what="the watch to roll 1.3.0 back",
            )
            took = time.monotonic() - started
        assert load.result.ok > 0
        assert watch_state(store, live) == "rolled_back", show(project, live)["watch"]
        detail = show(project, live)
        assert detail["status"] == "rolled_back"
        (rb_id,) = detail["rolled_back_by"]
        rb = show(project, rb_id)
        assert (rb["kind"], rb["status"], rb["version"], rb["strategy"]) == (
            "rollback",
            "succeeded",
            "1.0.0",
            "redeploy",
        )
        assert [s["name"] for s in rb["steps"]][:4] == [
            "UseTaskDefinition",
            "CreateTargetGroup",
            "StartService",
            "WaitHealthy",
        ]
        # Traffic on the previous version: 20 requests through production, all answered by it.
        assert project.prod_target_group() == "web-blue"
        assert probe(project) == [(200, "1.0.0")] * 20
        assert project.service("web-green")["desired"] == 0
        # The decision with its evidence, the notices and the incident report.
        decisions = [d for d in detail["decisions"] if d["action"] == "rollback"]
        assert decisions and decisions[0]["rule"] == "error-rate", detail["decisions"]
        assert decisions[0]["evidence"]["caused_by_release"] is True
        kinds = [e["kind"] for e in detail["events"]]
        for kind in ("watch.started", "watch.breach", "watch.rollback", "deploy.rolled_back"):
            assert kind in kinds, kinds
        notified = {e.kind for e in store.events(kind="notify.deployment.rolled_back")}
        assert notified == {"notify.deployment.rolled_back"}
        assert store.events(kind="notify.decision")
        report = project.path.parent / ".deployops" / "reports" / f"{live}.md"
        text = report.read_text(encoding="utf-8")
        assert "error-rate" in text and rb_id in text
        assert "web-prod switched web-green → web-blue" in text
        assert detail["watch"]["rollback_id"] == rb_id
        assert "error-rate" in detail["watch"]["summary"]
        assert project.cli("-o", "json", "lock", "list").stdout.strip() == "[]"
        assert project.orphans() == []
        print(f"degraded {DEGRADE_AFTER_S}s after start; rolled back within {took:.1f}s of serve")


@pytest.mark.skipif(
    os.environ.get("DEPLOYOPS_TEST_FAULTS") != "full",
    reason="long: `make faults` runs it (the clean end and the supersede are also on the "
    "virtual clock in tests/unit/engine/test_watch_after.py)",
)
def test_healthy_release_ends_clean_and_a_newer_deployment_supersedes_rb1() -> None:
    """1.1.0 under watch is superseded by 1.2.0; 1.2.0 stays live and its 5 s watch ends clean
    under the controller; nothing is rolled back."""
    rollback = {**FAST_RULES, "watch_after_switch": "5s"}
    with platform_project(
        version_environment=VERSIONS, blue_green=BLUE_GREEN, rollback=rollback
    ) as (project, store):
        deploy(project, "1.0.0")
        older = deploy(project, "1.1.0")
        assert show(project, older)["watch"]["state"] == "watching"
        newer = deploy(project, "1.2.0")
        watch = show(project, older)["watch"]
        assert (watch["state"], watch["superseded_by"]) == ("superseded", newer)
        text = project.cli("deployments", "show", older).stdout
        assert f"superseded by {newer} (deploy of 1.2.0)" in text
        with Load(prod_url(project), workers=1, max_seconds=60) as load, serving(project):
            wait_for(
                lambda: watch_state(store, newer) != "watching",
                timeout_s=40,
                what="the 5 s watch of 1.2.0 to end",
            )
        assert load.result.failed == 0, (load.result.by_status, load.result.errors)
        watch = show(project, newer)["watch"]
        assert watch["state"] == "clean", watch
        assert watch["under_watch"] is False
        assert show(project, newer)["status"] == "succeeded"
        assert show(project, newer)["rolled_back_by"] == []
        assert project.prod_target_group() == "web-blue"
        assert probe(project) == [(200, "1.2.0")] * 20
