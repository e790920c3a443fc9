"""Every observed deployment keeps its raw measurements (issue 19): the Observe step stores
the windows it read, per colour, and the store adds, reads and prunes them.

The in-memory metric source answers per period from the version's fault switches; it keeps no
latency distribution (the local platform's collector does: see the sketch test below)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from deployops.clock import VirtualClock
from deployops.domain.judge import JudgePolicy, JudgeVerdict, judge
from deployops.domain.model import MetricName
from deployops.domain.sketch import LatencySketch
from deployops.drivers.local.metrics import LocalMetrics
from deployops.engine.observe import measure
from deployops.errors import RolledBackError
from deployops.store import JudgementRecord, MeasurementRecord, MetricSample, StateStore
from tests.support.rules_rig import deploy, make_rules_rig

T0 = VirtualClock().now()


def test_observe_stores_the_windows_of_both_colours(tmp_path: Path) -> None:
    rig = make_rules_rig(tmp_path)
    first = deploy(rig, "1.0.0")
    rows = rig.store.measurements(deployment_id=first.id)
    new = [r for r in rows if r.role == "new"]
    assert new, "the observed windows are stored"
    assert {r.scope for r in new} == {first.target_group}
    assert all(r.requests == 100 and r.errors == 0 for r in new)
    assert all(r.source == "observe" and r.environment == "staging" for r in new)
    assert new[0].stats["latency_ms"]["p99"] == pytest.approx(5.0)
    assert "CPUUtilization" in new[0].stats
    # Five minutes of stability window in 60 s periods on the metric grid (the switch falls
    # inside the first one).
    assert 5 <= len(new) <= 6
    assert all(r.start.timestamp() % 60 == 0 for r in new)
    steps = rig.store.steps_for(first.id)
    observe = next(s for s in steps if s.name == "Observe")
    assert observe.result["measurements"] == len(rows)

    with pytest.raises(RolledBackError):
        deploy(rig, "2.0.0")  # 20 % errors
    (bad,) = rig.store.list_deployments(status=["rolled_back"])
    rows = rig.store.measurements(deployment_id=bad.id)
    new = [r for r in rows if r.role == "new"]
    previous = [r for r in rows if r.role == "previous"]
    assert new and all(r.errors == 20 for r in new)
    assert {r.colour for r in new} == {"green" if bad.target_group.endswith("green") else "blue"}
    assert previous, "the version it replaces is kept beside it"
    assert all(r.errors == 0 for r in previous)
    assert sorted(rig.store.measured_deployments()) == sorted([first.id, bad.id])


def test_a_window_stored_again_replaces_the_earlier_row(tmp_path: Path) -> None:
    store = StateStore.open(f"sqlite:///{tmp_path / 's.db'}")
    row = _row("d1", T0, requests=10)
    store.add_measurements([row])
    store.add_measurements([_row("d1", T0, requests=12)])
    (kept,) = store.measurements(deployment_id="d1")
    assert kept.requests == 12


def test_prune_drops_windows_and_judgements_past_the_retention(tmp_path: Path) -> None:
    store = StateStore.open(f"sqlite:///{tmp_path / 's.db'}")
    old, recent = T0 - timedelta(days=100), T0 - timedelta(days=1)
    store.add_measurements([_row("old", old), _row("new", recent)])
    for dep, ts in (("old", old), ("new", recent)):
        store.add_judgement(
            JudgementRecord(
                ts=ts,
                deployment_id=dep,
                environment="staging",
                service="web",
                source="canary step 1",
                verdict="pass",
                score=100.0,
            )
        )
    assert store.prune_measurements(T0 - timedelta(days=90)) == (1, 1)
    assert [r.deployment_id for r in store.measurements()] == ["new"]
    assert [j.deployment_id for j in store.judgements()] == ["new"]


def test_local_windows_keep_the_latency_distribution_for_the_judge(tmp_path: Path) -> None:
    """With the local collector's sketches, stored windows replay through the judge: the
    same distribution passes, a doubled one fails."""
    clock = VirtualClock()
    store = StateStore.open(f"sqlite:///{tmp_path / 's.db'}")
    metrics = LocalMetrics(store=store, clock=clock)
    t0 = clock.now().timestamp()
    for scope, factor in (("web-blue", 1.0), ("web-green", 2.0), ("web-same", 1.0)):
        for i in range(6):  # one minute of 10 s samples
            sketch = LatencySketch()
            for k in range(100):
                sketch.add((20 + (k * 37) % 80) * factor)
            store.add_samples(
                [
                    MetricSample(
                        scope=scope,
                        metric=MetricName.RESPONSE_TIME.value,
                        ts=t0 + 10 * i,
                        value=60.0 * factor,
                        count=100,
                        sketch=sketch.to_json(),
                    ),
                    MetricSample(
                        scope=scope,
                        metric=MetricName.ERROR_RATE.value,
                        ts=t0 + 10 * i,
                        value=1.0,
                        count=100,
                    ),
                ]
            )
    start = clock.now()
    end = start + timedelta(seconds=60)

    def stored(scope: str) -> list[MeasurementRecord]:
        windows = measure.read_windows(metrics, scope=scope, start=start, end=end, period_s=60)
        return measure.records(
            windows,
            deployment_id="d",
            environment="staging",
            service="web",
            scope=scope,
            role="new",
            source="observe",
        )

    blue, green, same = stored("web-blue"), stored("web-green"), stored("web-same")
    assert [(r.requests, r.errors) for r in blue] == [(600, 6)]
    assert blue[0].latency is not None
    base = measure.colour_window(blue)
    assert len(base.latencies) == 600
    assert max(base.latencies) == pytest.approx(0.099, rel=0.02)
    policy = JudgePolicy()
    assert judge(base, measure.colour_window(same), policy).verdict is JudgeVerdict.PASS
    slow = judge(base, measure.colour_window(green), policy)
    assert slow.metric("latency").outcome.value == "fail"


def test_colour_window_thins_a_large_distribution_proportionally() -> None:
    sketch = LatencySketch()
    sketch.add(10.0, count=90_000)
    sketch.add(1000.0, count=10_000)  # a 10 % tail
    row = _row("d", T0, requests=100_000)
    row = replace(row, latency=sketch.to_json())
    window = measure.colour_window([row])
    assert len(window.latencies) == measure.MAX_JUDGED_SAMPLES
    tail = sum(1 for v in window.latencies if v > 0.5) / len(window.latencies)
    assert tail == pytest.approx(0.10, abs=0.001)


def _row(dep: str, start: datetime, *, requests: int = 100) -> MeasurementRecord:
    return MeasurementRecord(
        deployment_id=dep,
        environment="staging",
        service="web",
        colour="green",
        role="new",
        scope="web-green",
        source="observe",
        start=start,
        end=start + timedelta(seconds=60),
        requests=requests,
        errors=0,
    )
