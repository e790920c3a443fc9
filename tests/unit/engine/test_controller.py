"""The controller's scheduler on the in-memory platform and a virtual clock (DEP-4, MON-1,
IAC-5): deferred target-group deletion with its safety checks, recovery of jobs claimed by a
dead controller, the loop schedule, and the /healthz and /metrics endpoints."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from deployops.clock import VirtualClock
from deployops.domain.alarms import DEFAULT_ALARMS
from deployops.domain.model import HealthCheck, MetricName, TaskDefinitionSpec
from deployops.domain.scaling import ScalingPolicy
from deployops.drivers.memory import MemoryCloud, MemoryCompute, MemoryTraffic
from deployops.engine.alarms import AlarmEvaluator
from deployops.engine.autoscaler import Autoscaler
from deployops.engine.cleanup import JOB_DELETE_TARGET_GROUP
from deployops.engine.controller import Controller
from deployops.store import StateStore
from deployops.web import create_app
from tests.support.prom import has, value
from tests.support.scripted_metrics import ScriptedMetrics


def _get(app: object, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await c.get(path)

    return asyncio.run(go())


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = VirtualClock()
        self.cloud = MemoryCloud(clock=self.clock)
        self.cloud.add_service_listeners("web", 18080)
        # After a deploy to blue: both listeners on blue, green (the old colour) idle at 0.
        self.cloud.add_listener("web-test", 18081, "web-blue")
        self.compute = MemoryCompute(cloud=self.cloud)
        self.traffic = MemoryTraffic(cloud=self.cloud)
        self.metrics = ScriptedMetrics(clock=self.clock)
        self.store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        td = self.compute.register_task_definition(TaskDefinitionSpec("web", "1.0.0", 8000))
        for colour in ("blue", "green"):
            self.traffic.create_target_group(f"web-{colour}", health_check=HealthCheck())
        self.compute.create_service(
            "web-blue", task_definition=td.ref, desired_count=2, target_group="web-blue"
        )
        self.compute.create_service(
            "web-green", task_definition=td.ref, desired_count=0, target_group="web-green"
        )
        self.metrics.set(MetricName.CPU, 40.0)

    def controller(self, worker: str = "ctl@here:1", **kw: object) -> Controller:
        scaler = Autoscaler(
            policy=ScalingPolicy(),
            environment="production",
            services=["web"],
            compute=self.compute,
            traffic=self.traffic,
            metrics=self.metrics,
            store=self.store,
            clock=self.clock,
        )
        evaluator = AlarmEvaluator(
            alarms=DEFAULT_ALARMS,
            environment="production",
            services=["web"],
            metrics=self.metrics,
            traffic=self.traffic,
            store=self.store,
            clock=self.clock,
            scale_out=scaler.scale_out_for_alarm,
        )
        return Controller(
            store=self.store,
            clock=self.clock,
            environment="production",
            traffic=self.traffic,
            compute=self.compute,
            worker=worker,
            evaluator=evaluator,
            autoscaler=scaler,
            **kw,  # type: ignore[arg-type]
        )

    def schedule_delete(self, group: str, *, after_s: float = 86400.0, dep: str = "dep-1") -> None:
        self.store.schedule_job(
            kind=JOB_DELETE_TARGET_GROUP,
            dedup_key=f"{JOB_DELETE_TARGET_GROUP}:{dep}:{group}",
            due_at=self.clock.now() + timedelta(seconds=after_s),
            payload={
                "environment": "production",
                "service": "web",
                "target_group": group,
                "deployment_id": dep,
            },
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.store.close()


def test_dep4_old_target_group_is_deleted_24h_later_only_when_unused(world: World) -> None:
    ctl = world.controller()
    world.schedule_delete("web-green")
    world.clock.advance(86400 - 60)
    assert ctl.run_jobs() == []  # not due yet
    world.clock.advance(60)
    ((_job, outcome),) = ctl.run_jobs()
    assert outcome.status == "done"
    assert "web-green" not in world.traffic.list_target_groups()
    assert world.store.jobs()[0].status == "done"
    assert [e.kind for e in world.store.events(kind="job.done")] == ["job.done"]


def test_dep4_group_with_listener_traffic_or_running_tasks_is_skipped_with_reason(
    world: World,
) -> None:
    ctl = world.controller()
    world.schedule_delete("web-blue", after_s=0, dep="dep-1")  # web-prod forwards to it
    world.compute.update_service("web-green", desired_count=1)
    world.schedule_delete("web-green", after_s=0, dep="dep-2")  # still has a task
    outcomes = {job.payload["target_group"]: o for job, o in ctl.run_jobs()}
    assert outcomes["web-blue"].status == "skipped"
    assert "web-prod still forwards traffic to web-blue" in outcomes["web-blue"].result
    assert outcomes["web-green"].status == "skipped"
    assert "desired task" in outcomes["web-green"].result
    assert set(world.traffic.list_target_groups()) == {"web-blue", "web-green"}


def test_job_claimed_by_a_dead_controller_runs_once_after_restart(world: World) -> None:
    world.schedule_delete("web-green", after_s=0)
    (claimed,) = world.store.claim_due_jobs(now=world.clock.now(), worker="ctl@here:999")
    # The claimant died (SIGKILL) before finishing; a live one's claims are left alone.
    alive = {"ctl@here:2"}
    ctl = world.controller(worker="ctl@here:2", owner_alive=lambda o: o in alive)
    ctl.start()
    assert [e.kind for e in world.store.events(kind="controller.job_released")] == [
        "controller.job_released"
    ]
    ran = ctl.run_jobs()
    assert [(j.id, o.status) for j, o in ran] == [(claimed.id, "done")]
    assert ctl.run_jobs() == []  # never twice


def test_tick_runs_each_loop_on_its_own_period(world: World) -> None:
    """MON-1 alarms every 60 s period and IAC-5 autoscaling every 60 s, jobs every 5 s."""
    ctl = world.controller(job_interval_s=5.0, tick_s=1.0)
    stop = threading.Event()
    ctl.run(stop, max_ticks=130)  # 130 virtual seconds
    assert ctl.stats["jobs"].runs == 26
    assert ctl.stats["alarms"].runs == 3
    assert ctl.stats["autoscaler"].runs == 3
    assert world.store.alarm_state("production", "web", "HighCPUUtilization") is not None


def test_dep7_notice_redelivery_runs_on_its_own_thread_and_never_stalls_a_tick(
    world: World,
) -> None:
    """A receiver that hangs holds the redelivery loop, not the alarms and jobs; a run still
    under way is not started again."""
    release = threading.Event()
    runs: list[int] = []

    def redeliver() -> None:
        runs.append(1)
        release.wait(10)

    ctl = world.controller(redeliver=redeliver, redeliver_interval_s=5.0)
    ctl.tick()
    world.clock.advance(5)
    ctl.tick()  # the first run is still waiting on its receiver: not started twice
    assert ctl.stats["alarms"].runs == 1 and ctl.stats["jobs"].runs == 2
    release.set()
    ctl.join_background(timeout=5)
    assert runs == [1] and ctl.stats["notices"].runs == 1
    world.clock.advance(5)
    ctl.tick()
    ctl.join_background(timeout=5)
    assert ctl.stats["notices"].runs == 2


def test_healthz_and_prometheus_metrics(world: World) -> None:
    ctl = world.controller()
    app = create_app(controller=ctl, store=world.store, clock=world.clock)
    assert _get(app, "/healthz").status_code == 503  # not started
    world.metrics.set(MetricName.CPU, 95.0)
    ctl.run(threading.Event(), max_ticks=125)
    health = _get(app, "/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    text = _get(app, "/metrics").text
    assert "# TYPE deployops_controller_loop_duration_seconds summary" in text
    assert value(text, "deployops_controller_loop_duration_seconds_count", loop="alarms") == 3
    alarm = {"environment": "production", "service": "web", "alarm": "HighCPUUtilization"}
    assert value(text, "deployops_alarm_state", **alarm, state="ALARM") == 1
    assert value(text, "deployops_alarm_state", **alarm, state="OK") == 0
    assert has(text, "deployops_scaling_activities", environment="production", service="web")
    world.clock.advance(120)  # the loop stopped ticking: stalled
    assert _get(app, "/healthz").status_code == 503


def test_measurements_past_the_retention_are_pruned_hourly(world: World) -> None:
    """Issue 19: observed windows and judgements are kept ``measurements_retention`` (90 d by
    default), then pruned by the controller's hourly loop."""
    from deployops.store import MeasurementRecord

    def window(dep: str, age_days: float) -> MeasurementRecord:
        start = world.clock.now() - timedelta(days=age_days)
        return MeasurementRecord(
            deployment_id=dep,
            environment="production",
            service="web",
            colour="green",
            role="new",
            scope="web-green",
            source="observe",
            start=start,
            end=start + timedelta(minutes=1),
            requests=10,
            errors=0,
        )

    world.store.add_measurements([window("old", 91), window("kept", 89)])
    ctl = world.controller(measurements_retention_s=90 * 86400.0)
    stop = threading.Event()
    ctl.run(stop, max_ticks=2)
    assert ctl.stats["measurements"].runs == 1
    assert [r.deployment_id for r in world.store.measurements()] == ["kept"]
    (ev,) = world.store.events(kind="measurements.pruned")
    assert ev.data == {"windows": 1, "judgements": 0}
    world.clock.advance(2 * 86400)  # "kept" is now 91 days old; the next hourly run prunes it
    ctl.run(stop, max_ticks=3700)
    assert world.store.measurements() == []


def test_the_wired_controller_keeps_the_longest_measurements_retention(tmp_path: Path) -> None:
    """``wiring.build_controller`` takes the retention from ``deployops.yaml``: the longest
    any service asks for (a window is kept while one still needs it)."""
    from deployops.drivers import Platform
    from deployops.drivers.memory import MemoryMetrics
    from deployops.wiring import build_controller
    from tests.support.memory_rig import write_project

    project = write_project(tmp_path, rollback={"measurements_retention": "120d"})
    clock = VirtualClock()
    cloud = MemoryCloud(clock=clock)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        ctl = build_controller(
            project,
            "staging",
            store=store,
            clock=clock,
            platform=Platform(
                name="memory",
                environment="staging",
                compute=MemoryCompute(cloud=cloud),
                traffic=MemoryTraffic(cloud=cloud),
                metrics=MemoryMetrics(cloud=cloud),
            ),
            worker="ctl@here:1",
        )
        assert ctl.measurements_retention_s == 120 * 86400.0
        assert ctl.prune_measurements() == (0, 0)
    finally:
        store.close()
