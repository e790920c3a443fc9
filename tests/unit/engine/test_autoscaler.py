"""Target tracking on the in-memory platform with a virtual clock (IAC-5)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployops.clock import VirtualClock
from deployops.domain.model import MetricName, TaskDefinitionSpec
from deployops.domain.scaling import ScalingPolicy
from deployops.drivers.memory import MemoryCloud, MemoryCompute, MemoryTraffic
from deployops.engine.autoscaler import Autoscaler
from deployops.store import StateStore
from tests.support.scripted_metrics import ScriptedMetrics


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = VirtualClock()
        self.cloud = MemoryCloud(clock=self.clock)
        self.cloud.add_service_listeners("web", 18080)
        self.compute = MemoryCompute(cloud=self.cloud)
        self.traffic = MemoryTraffic(cloud=self.cloud)
        self.metrics = ScriptedMetrics(clock=self.clock)
        self.store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        td = self.compute.register_task_definition(
            TaskDefinitionSpec(family="web", version="1.0.0", port=8000)
        )
        self.compute.create_service(
            "web-blue", task_definition=td.ref, desired_count=2, target_group="web-blue"
        )

    def scaler(self, policy: ScalingPolicy | None = None) -> Autoscaler:
        return Autoscaler(
            policy=policy or ScalingPolicy(),
            environment="production",
            services=["web"],
            compute=self.compute,
            traffic=self.traffic,
            metrics=self.metrics,
            store=self.store,
            clock=self.clock,
        )

    def desired(self) -> int:
        svc = self.compute.describe_service("web-blue")
        assert svc is not None
        return svc.desired


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.store.close()


def test_iac5_cpu_series_scales_2_to_10_and_back_honouring_cooldowns(world: World) -> None:
    scaler = world.scaler()
    world.metrics.set(MetricName.CPU, 140.0)  # twice the 70 % target
    counts = []
    for _ in range(16):  # 16 minutes of 1-minute evaluations
        world.clock.advance(60)
        scaler.step()
        counts.append(world.desired())
    assert counts[-1] == 10
    world.metrics.set(MetricName.CPU, 20.0)
    for _ in range(30):
        world.clock.advance(60)
        scaler.step()
        counts.append(world.desired())
    assert counts[-1] == 2

    acts = world.store.scaling_activities(environment="production", service="web")
    steps = [(a.previous, a.desired) for a in acts]
    # ceil(current x 140 / 70) doubles, capped at 10; scale-in removes at most 2 per step.
    assert steps == [(2, 4), (4, 8), (8, 10), (10, 8), (8, 6), (6, 4), (4, 2)]
    assert all(a.status == "succeeded" and a.cause == "target_tracking" for a in acts)
    assert "scale out 2 → 4" in acts[0].reason
    assert "scale in 10 → 8" in acts[3].reason
    # IAC-5: 300 s cooldown between activities; scale-in waits 300 s after the last scale-out.
    gaps = [(b.ts - a.ts).total_seconds() for a, b in itertools.pairwise(acts)]
    assert all(g >= 300 for g in gaps), gaps
    # Nothing changed inside a cooldown: the count only moves on recorded activities.
    assert set(counts) == {2, 4, 6, 8, 10}


def test_iac5_within_tolerance_and_no_data_keep_the_count(world: World) -> None:
    scaler = world.scaler()
    world.metrics.set(MetricName.CPU, 74.0)  # within 10 % of 70
    world.clock.advance(60)
    out = scaler.step()
    assert world.desired() == 2
    assert "within 10% of target 70" in out[0].decision.reason
    world.metrics.set(MetricName.CPU, None)
    world.clock.advance(120)
    out = scaler.step()
    assert world.desired() == 2
    assert "no CPUUtilization datapoint" in out[0].decision.reason
    assert world.store.scaling_activities() == []


def test_iac5_scale_in_cooldown_is_separate_and_longer(world: World) -> None:
    """A cautious scale-in: 600 s after any activity, while scale-out waits only 60 s."""
    scaler = world.scaler(ScalingPolicy(scale_out_cooldown_s=60, scale_in_cooldown_s=600))
    world.metrics.set(MetricName.CPU, 140.0)
    world.clock.advance(60)
    scaler.step()
    world.clock.advance(60)
    scaler.step()
    assert world.desired() == 8  # two scale-outs one minute apart
    world.metrics.set(MetricName.CPU, 10.0)
    for _ in range(9):
        world.clock.advance(60)
        scaler.step()
        assert world.desired() == 8
    world.clock.advance(60)
    scaler.step()
    assert world.desired() == 6


def test_iac5_autoscaler_never_resizes_during_a_deployment(world: World) -> None:
    """The deploy lock is held: the activity is recorded as skipped, the count untouched."""
    scaler = world.scaler()
    world.store.acquire_lock(
        "production/web", owner="alice@host:1", reason="deploy 1.2.0", now=world.clock.now()
    )
    world.metrics.set(MetricName.CPU, 140.0)
    world.clock.advance(60)
    scaler.step()
    assert world.desired() == 2
    (act,) = world.store.scaling_activities()
    assert act.status == "skipped"
    assert "alice@host:1" in act.error


def test_iac5_alarm_scale_out_adds_a_step_and_respects_the_cooldown(world: World) -> None:
    scaler = world.scaler()
    first = scaler.scale_out_for_alarm("web", "HighMemoryUsage", "memory 90 >= 85")
    assert first is not None
    assert (first.previous, first.desired, first.cause) == (2, 3, "alarm:HighMemoryUsage")
    world.clock.advance(60)
    assert scaler.scale_out_for_alarm("web", "HighMemoryUsage", "still high") is None
    assert world.desired() == 3
