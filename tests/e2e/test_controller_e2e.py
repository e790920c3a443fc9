"""``deployops serve`` on the real local platform (HAProxy, supervised replicas, the metrics
collector): target-tracking auto scaling under real CPU load (IAC-5) with the alarms' states
exposed (MON-1), deployments resumed after a SIGKILL, and old target groups deleted once due
(DEP-4). Real clock, short configured durations; every process started here is stopped here."""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from deployops.clock import SystemClock
from deployops.config.project import load_project
from deployops.drivers.local import control
from deployops.drivers.local.client import DaemonClient
from deployops.drivers.local.load import Load
from deployops.drivers.local.paths import LocalPaths
from deployops.drivers.local.traffic import HaproxyTraffic
from deployops.store import DeploymentRecord, JobRecord, ScalingActivity, StateStore
from tests.e2e.conftest import DEPLOYOPS, FAST_RULES, FAULTS, Project
from tests.fixtures_local import ENV, free_port, write_project
from tests.support.prom import has, value

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CPU_VERSION = "3.0.0"  # every `/` request burns 50 ms of CPU in the replica that serves it
BLUE_GREEN = {
    "health_timeout": 20,
    "stability_window": 2,
    "sample_interval": 0.5,
    "smoke_checks": [{"path": "/health", "status": 200}, {"path": "/", "status": 200}],
}
# IAC-5 with the guide's shape and short numbers: track CPU, 2 to 4 tasks on a 2-core machine.
# The target is low because the whole machine (load generator, HAProxy, replicas, and whatever
# else runs there) shares two cores: under the test's load two replicas read 35-80 % depending
# on the contention, idle ones 1-2 %.
AUTOSCALING = {
    "target": 20,
    "min_capacity": 2,
    "max_capacity": 4,
    "period": "2s",
    "scale_out_cooldown": "4s",
    "scale_in_cooldown": "6s",
    "scale_in_max_step": 2,
}
# MON-1: the guide's five alarms on 2-second periods, so their states show within the test;
# the CPU alarm is lowered to the test's load and only notifies, leaving scale-out to target
# tracking (no tug of war).
ALARMS: dict[str, dict[str, Any]] = {
    "HighCPUUtilization": {"period": "2s", "threshold": 15, "action": "notify"},
    "HighErrorRate": {"period": "2s"},
    "LowHealthyHosts": {"period": "2s"},
    "HighMemoryUsage": {"period": "2s"},
    "DatabaseConnections": {"period": "2s"},
}


def wait_for(check: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout_s:g}s")


@contextmanager
def platform_project(
    *, top: dict[str, Any] | None = None, **service: Any
) -> Iterator[tuple[Project, StateStore]]:
    """A temp project with the sample service (and project-level sections ``top``), the local
    platform up, and its state store; everything is stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="dops-ctl-"))
    settings: dict[str, Any] = {
        "version_environment": {
            **FAULTS,
            CPU_VERSION: {"FAULT_CPU_MS_PER_REQUEST": "50"},
        },
        "blue_green": BLUE_GREEN,
        # the rules judged on 1 s periods like the other shortened waits: with the guide's
        # 60 s periods nothing could be judged inside a short stability window
        "rollback": FAST_RULES,
        **service,
    }
    path = write_project(root, **settings)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc.update(top or {})
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    config = load_project(path)
    clock = SystemClock()
    control.up(config, ENV, clock=clock)
    store = StateStore.open(config.state_url())
    try:
        yield Project(config), store
    finally:
        store.close()
        report = control.down(config, ENV, clock=clock)
        shutil.rmtree(root, ignore_errors=True)
        assert report["killed_leftovers"] == [], report


class Serve:
    """``deployops serve`` as a subprocess, with its HTTP face on a free loopback port."""

    def __init__(self, project: Project, log_dir: Path, *, tick: float = 0.2) -> None:
        self.port = free_port()
        self.stderr_path = log_dir / f"serve-{self.port}.err"
        self._stderr = self.stderr_path.open("w", encoding="utf-8")
        args = ["serve", "--port", str(self.port), "--tick", str(tick)]
        self.proc = subprocess.Popen(
            [DEPLOYOPS, "-c", str(project.path), "-e", ENV, *args],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            text=True,
        )
        self.exit_code: int | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url(path), timeout=5.0, trust_env=False)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, f"serve exited early: {self.stderr()}"
            try:
                return self.get("/healthz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout_s=timeout_s, what="serve's /healthz answering 200")

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(encoding="utf-8")

    def stop(self) -> int:
        """SIGTERM (a clean shutdown), SIGKILL if it does not exit within 15 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._stderr.close()
        self.exit_code = self.proc.returncode
        return self.exit_code


@contextmanager
def serving(project: Project, *, tick: float = 0.2) -> Iterator[Serve]:
    serve = Serve(project, project.path.parent)
    try:
        serve.wait_ready()
        yield serve
    finally:
        serve.stop()
    # A SIGTERM is a clean shutdown: the web server and the controller loop both stop.
    assert serve.exit_code == 0, (serve.exit_code, serve.stderr())


def activities(store: StateStore) -> list[ScalingActivity]:
    return store.scaling_activities(environment=ENV, service="web", limit=100)


def cpu_alarm(store: StateStore) -> str | None:
    rec = store.alarm_state(ENV, "web", "HighCPUUtilization")
    return rec.state if rec else None


def low_healthy(store: StateStore) -> str | None:
    rec = store.alarm_state(ENV, "web", "LowHealthyHosts")
    return rec.state if rec else None


def deployment(store: StateStore, deployment_id: str) -> DeploymentRecord:
    rec = store.find_deployment(deployment_id)
    assert rec is not None, deployment_id
    return rec


def prod_url(project: Project) -> str:
    return f"http://127.0.0.1:{project.config.services['web'].port}/"


# ---------------------------------------------------------------------------- IAC-5, MON-1
def test_cpu_load_scales_out_and_back_in_after_cooldown_iac5_mon1() -> None:
    """CPU load from the sample service's per-request CPU fault makes the controller add
    replicas; when the load stops it removes them, but only after the scale-in cooldown; every
    activity is recorded with its reason, and /healthz and /metrics show the controller and the
    alarms' states."""
    top = {"autoscaling": AUTOSCALING, "alarms": ALARMS}
    with platform_project(top=top) as (project, store):
        out = project.cli("deploy", "--version", CPU_VERSION)
        assert out.returncode == 0, out.stderr
        live = project.prod_target_group()
        assert project.service(live)["desired"] == 2

        with serving(project) as serve:
            with Load(prod_url(project), workers=4, max_seconds=60) as load:
                wait_for(
                    lambda: project.service(live)["desired"] > 2,
                    timeout_s=30,
                    what="a scale-out under CPU load",
                )
                peak = project.service(live)["desired"]
                # The added replicas join the pool: they turn healthy while the load runs.
                wait_for(
                    lambda: project.service(live)["healthy"] >= peak,
                    timeout_s=20,
                    what=f"{peak} healthy replicas",
                )
                time.sleep(1.0)  # traffic on the enlarged pool
            assert load.result.failed == 0, (load.result.by_status, load.result.errors)
            assert load.result.by_version == {CPU_VERSION: load.result.ok}

            wait_for(
                lambda: project.service(live)["desired"] == 2,
                timeout_s=40,
                what="the scale-in back to the minimum",
            )
            wait_for(
                lambda: cpu_alarm(store) == "OK",
                timeout_s=20,
                what="HighCPUUtilization back to OK",
            )
            healthz = serve.get("/healthz")
            metrics = serve.get("/metrics")

        assert 2 < peak <= 4
        acts = activities(store)
        outs = [a for a in acts if a.desired > a.previous and a.status == "succeeded"]
        ins = [a for a in acts if a.desired < a.previous and a.status == "succeeded"]
        assert outs, acts
        assert ins, acts
        assert all(a.compute_service == live for a in acts)
        assert all(a.cause == "target_tracking" for a in outs + ins), acts
        # Recorded with reasons a person can read.
        assert "above target 20: scale out 2 →" in outs[0].reason, outs[0]
        assert "below target 20: scale in" in ins[-1].reason, ins[-1]
        assert acts[-1] == ins[-1]
        assert ins[-1].desired == 2
        # The scale-in cooldown (6 s) runs from the previous activity of either kind: capacity
        # just added is never removed before it has passed.
        done = [a for a in acts if a.status == "succeeded"]
        for before, after in itertools.pairwise(done):
            if after.desired < after.previous:
                gap = (after.ts - before.ts).total_seconds()
                assert gap >= 6.0, (before, after)

        assert healthz.status_code == 200, healthz.text
        assert healthz.json()["loops"]["autoscaler"] > 0
        text = metrics.text
        for alarm in ALARMS:
            assert f'alarm="{alarm}"' in text, alarm
        web = {"environment": "development", "service": "web"}
        assert value(text, "deployops_alarm_state", **web, alarm="LowHealthyHosts", state="OK") == 1
        assert has(text, "deployops_scaling_activities", **web)
        cpu = "HighCPUUtilization"
        assert value(text, "deployops_alarm_state", **web, alarm=cpu, state="OK") == 1
        # The CPU alarm went into ALARM under the load and back to OK after it, with reasons.
        history = project.cli("-o", "json", "alarms", "history", "HighCPUUtilization")
        assert history.returncode == 0, history.stderr
        changes = [(h["previous"], h["state"]) for h in json.loads(history.stdout)]
        assert ("OK", "ALARM") in changes or ("INSUFFICIENT_DATA", "ALARM") in changes, changes
        assert changes[-1] == ("ALARM", "OK"), changes


# ---------------------------------------------------------------------------- DEP-7 resume
def test_serve_resumes_a_deploy_killed_after_the_switch_dep3_dep7() -> None:
    """A deploy killed with SIGKILL right after SwitchListener is finished by the controller at
    start: the deployment ends ``succeeded`` with traffic on a healthy target group."""
    with platform_project() as (project, store):
        assert project.cli("deploy", "--version", "1.0.0").returncode == 0
        proc = project.popen("-o", "json", "deploy", "--version", "1.1.0")
        assert proc.stdout is not None
        deployment_id = ""
        killed = False
        try:
            for line in proc.stdout:
                event = json.loads(line)
                deployment_id = event.get("deployment_id") or deployment_id
                if event["kind"] == "step.succeeded" and event["data"]["step"] == "SwitchListener":
                    proc.send_signal(signal.SIGKILL)
                    killed = True
                    break
        finally:
            if proc.poll() is None and not killed:
                proc.kill()
            proc.wait(timeout=30)
            proc.stdout.close()
            if proc.stderr is not None:
                proc.stderr.close()
        assert killed, "the deploy never reached SwitchListener"
        assert deployment_id.startswith("dep-"), deployment_id
        assert deployment(store, deployment_id).status == "running"  # interrupted
        assert project.prod_target_group() == "web-green"  # killed after the switch

        with serving(project):
            wait_for(
                lambda: deployment(store, deployment_id).status != "running",
                timeout_s=60,
                what="the interrupted deployment to finish",
            )
            rec = deployment(store, deployment_id)
            events = store.events(deployment_id=deployment_id)

        assert rec.status == "succeeded", rec
        assert any(e.kind == "controller.resumed" for e in events), [e.kind for e in events]
        assert any(e.kind == "deploy.resumed" for e in events)
        assert project.prod_target_group() == "web-green"
        green = project.service("web-green")
        assert green["healthy"] == 2, green
        assert project.service("web-blue")["desired"] == 0  # DEP-4 cleanup ran
        health = project.cli("health", "--service", "web")
        assert health.returncode == 0, (health.stdout, health.stderr)
        assert project.cli("-o", "json", "lock", "list").stdout.strip() == "[]"
        assert project.orphans() == []


# ---------------------------------------------------------------------------- DEP-4
def _jobs_by_group(store: StateStore) -> dict[str, JobRecord]:
    return {str(j.payload["target_group"]): j for j in store.jobs()}


def test_old_target_group_deleted_once_due_never_the_live_one_dep4() -> None:
    """With a 20 s retention, the controller deletes the previous colour's target group once its
    job is due; a job for a group that carries traffic again (a later deploy switched back to
    it) is skipped with the reason, and production never loses a request. (The retention
    outlasts the next deploy: a deploy itself runs the deletions already due when it starts.)"""
    with platform_project(blue_green={**BLUE_GREEN, "target_group_retention": 20}) as (
        project,
        store,
    ):
        for version in ("1.0.0", "1.1.0", "1.2.0"):
            out = project.cli("deploy", "--version", version)
            assert out.returncode == 0, (version, out.stderr)
        # 1.1.0 scheduled web-blue's deletion, then 1.2.0 moved production back onto web-blue
        # and scheduled web-green's.
        assert project.prod_target_group() == "web-blue"
        jobs = _jobs_by_group(store)
        assert set(jobs) == {"web-blue", "web-green"}, jobs
        assert all(j.status == "pending" for j in jobs.values())

        paths = LocalPaths.of(project.config, ENV)
        traffic = HaproxyTraffic(client=DaemonClient(paths, ENV), clock=SystemClock())
        try:
            assert traffic.describe_target_group("web-green") is not None
            with Load(prod_url(project), workers=2, max_seconds=90) as load, serving(project):
                wait_for(
                    lambda: all(j.status != "pending" for j in _jobs_by_group(store).values()),
                    timeout_s=60,
                    what="both deletion jobs to run",
                )
            jobs = _jobs_by_group(store)
            assert jobs["web-green"].status == "done", jobs["web-green"]
            assert traffic.describe_target_group("web-green") is None  # deleted
            assert jobs["web-blue"].status == "skipped", jobs["web-blue"]
            assert "still forwards traffic to web-blue" in jobs["web-blue"].result
            assert traffic.describe_target_group("web-blue") is not None  # never the live one
        finally:
            traffic.close()
        assert load.result.failed == 0, (load.result.by_status, load.result.errors)
        assert load.result.by_version == {"1.2.0": load.result.ok}
        health = project.cli("health", "--service", "web")
        assert health.returncode == 0, (health.stdout, health.stderr)


# ---------------------------------------------------------------------------- MON-1 switch
def test_blue_green_deploy_under_the_controller_pages_no_one_mon1_dep3() -> None:
    """A healthy blue-green deploy does not trip LowHealthyHosts: the new target group's
    start-up (0, then 1 healthy host while it was not live) is not production's health. Both at
    the controller's start (the switch is read from the deployment's steps) and when it sees
    the switch happen."""
    alarms = {"LowHealthyHosts": {"period": "20s"}, "HighErrorRate": {"period": "2s"}}
    with platform_project(top={"alarms": alarms}) as (project, store):
        assert project.cli("deploy", "--version", "1.0.0").returncode == 0
        with serving(project) as serve:
            wait_for(lambda: low_healthy(store) == "OK", timeout_s=10, what="LowHealthyHosts OK")
            with Load(prod_url(project), workers=2, max_seconds=60) as load:
                out = project.cli("deploy", "--version", "1.1.0")
                assert out.returncode == 0, out.stderr
                evaluated = serve.get("/healthz").json()["loops"]["alarms"]
                wait_for(
                    lambda: serve.get("/healthz").json()["loops"]["alarms"] >= evaluated + 3,
                    timeout_s=15,
                    what="three alarm evaluations after the switch",
                )
        assert load.result.failed == 0, (load.result.by_status, load.result.errors)
        assert project.prod_target_group() == "web-green"
        assert low_healthy(store) == "OK"
        history = project.cli("-o", "json", "alarms", "history", "LowHealthyHosts")
        states = [h["state"] for h in json.loads(history.stdout)]
        assert "ALARM" not in states, history.stdout
        pages = store.events(kind="notify.alarm.alarm")
        assert pages == [], [e.message for e in pages]
