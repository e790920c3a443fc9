"""The RulesObserver on its own (RB-1, RB-2) over a scripted per-scope metric history on a
virtual clock: M of N, transient and persistent query errors, the baseline taken from before
the switch, and the ``rollback:`` section of deployops.yaml mapped onto the policy.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from deployops.clock import VirtualClock
from deployops.config.project import load_project
from deployops.config.rollback import RollbackSettings, effective_rollback
from deployops.domain.model import (
    Datapoint,
    Measurement,
    MetricName,
    MetricQuery,
    TaskDefinitionSpec,
)
from deployops.domain.plan import Observe
from deployops.domain.policy import DEFAULT_ROLLBACK_POLICY, Action
from deployops.drivers.memory import MemoryCloud, MemoryCompute
from deployops.engine.observe.health import Verdict
from deployops.engine.observe.rules_observer import RulesObserver
from deployops.errors import ConfigError


class ScopedMetrics:
    """Error rate per scope from a script: ``set(scope, value)`` holds from now on."""

    name: ClassVar[str] = "scoped"
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.timeline: dict[str, list[tuple[datetime, float | None]]] = {}
        self.failing = False

    def set(self, scope: str, value: float | None) -> None:
        self.timeline.setdefault(scope, []).append((self.clock.now(), value))

    def query(self, query: MetricQuery) -> Measurement:
        if self.failing:
            return Measurement(query=query, error="connection refused")
        if query.metric is not MetricName.ERROR_RATE:
            return Measurement(query=query)
        points = []
        t = query.start
        while t < query.end:
            value = None
            for ts, v in self.timeline.get(query.scope, []):
                if ts <= t:
                    value = v
            if value is not None:
                points.append(Datapoint(timestamp=t, value=value, samples=100))
            t += timedelta(seconds=query.period_s)
        return Measurement(query=query, datapoints=tuple(points))


STEP = Observe(
    service="web-green",
    target_group="web-green",
    baseline_target_group="web-blue",
    window_s=300,
    interval_s=10,
    max_error_rate=1.0,
)


def rig(**settings: object) -> tuple[VirtualClock, ScopedMetrics, RulesObserver]:
    clock = VirtualClock()
    cloud = MemoryCloud(clock=clock)
    compute = MemoryCompute(cloud=cloud)
    td = compute.register_task_definition(TaskDefinitionSpec(family="web", version="1", port=1))
    compute.create_service("web-green", task_definition=td.ref, desired_count=4, target_group="")
    metrics = ScopedMetrics(clock)
    only_errors = {
        "rules": {n: {"enabled": False} for n in DEFAULT_ROLLBACK_POLICY.names if n != "error-rate"}
    }
    merged = RollbackSettings.model_validate(only_errors).merged(
        RollbackSettings.model_validate(settings)
    )
    observer = RulesObserver.from_settings(compute=compute, metrics=metrics, settings=merged)
    return clock, metrics, observer


def watch(
    clock: VirtualClock, observer: RulesObserver, since: datetime, seconds: float
) -> list[tuple[float, Verdict]]:
    """Evaluate every 10 s for ``seconds``; (seconds since the switch, verdict) pairs."""
    out = []
    for _ in range(int(seconds // 10)):
        clock.advance(10)
        out.append(
            (
                (clock.now() - since).total_seconds(),
                observer.evaluate(STEP, since=since, now=clock.now()),
            )
        )
    return out


def first(verdicts: list[tuple[float, Verdict]], action: str) -> float | None:
    return next((t for t, v in verdicts if v.action == action), None)


def test_rb1_m_of_n_3_of_5_acts_on_3_bad_minutes_where_5_of_5_does_not() -> None:
    """M of N: errors for 3 minutes then recovery. 5 of 5 (the guide's "for 5 min") never
    rolls back; datapoints_to_alarm 3 rolls back at the 3-minute mark."""
    for m, expected in ((5, None), (3, 180.0)):
        clock, metrics, observer = rig(rules={"error-rate": {"datapoints_to_alarm": m}})
        metrics.set("web-blue", 0.5)
        clock.advance(600)
        since = clock.now()
        metrics.set("web-green", 20.0)
        bad = watch(clock, observer, since, 180)
        metrics.set("web-green", 0.5)
        verdicts = bad + watch(clock, observer, since, 300)
        assert first(verdicts, "rollback") == expected, m


def test_failed_queries_keep_the_last_data_then_become_their_own_verdict() -> None:
    """A failing metric source is never read as health: one failed query reuses the last
    data (the breach stays visible), three in a row are a query_error verdict (notify)."""
    clock, metrics, observer = rig(rules={"error-rate": {"window": "1m"}})
    metrics.set("web-blue", 0.0)
    since = clock.now()
    metrics.set("web-green", 50.0)
    watch(clock, observer, since, 50)
    metrics.failing = True
    (_, v1), (_, v2), (_, v3) = watch(clock, observer, since, 30)
    assert v1.action == "rollback"  # 60 s of 50 % errors, judged on the data already seen
    # Once the last good data has aged out of the window: not judged, never "ok".
    assert v2.action is Action.NONE
    assert v2.evidence["rules"]["error-rate"]["verdict"] == "insufficient_data"
    assert v3.action == "notify" and v3.evidence["verdict"] == "query_error"
    assert "3 consecutive metric queries failed" in v3.reason and "connection refused" in v3.reason
    assert v3.evidence["caused_by_release"] is False


def test_rb1_a_rule_whose_data_stops_after_it_was_judged_ends_not_judged() -> None:
    """A metric source that stops (a collector down) during the watch: what the rule was
    judged on before is no evidence for the rest, so it ends as not judged (never a pass)
    and is judged again when data comes back."""
    clock, metrics, observer = rig(rules={"error-rate": {"window": "1m"}})
    metrics.set("web-blue", 0.0)
    since = clock.now()
    metrics.set("web-green", 0.5)
    watch(clock, observer, since, 90)
    assert observer.judgement()["error-rate"]["judged"] is True
    metrics.set("web-green", None)  # no datapoint from now on
    verdicts = watch(clock, observer, since, 160)  # the 1 min window and its settling
    assert all(v.action in (Action.NONE, Action.NOTIFY) for _t, v in verdicts)
    gone = observer.judgement()["error-rate"]
    assert gone["judged"] is False
    assert "data stopped arriving after it was judged" in gone["basis"]
    metrics.set("web-green", 0.5)
    watch(clock, observer, since, 160)
    assert observer.judgement()["error-rate"]["judged"] is True


def test_rb2_baseline_from_before_the_switch_when_blue_has_no_traffic_now() -> None:
    """RB-2: blue gets no requests after the switch; its series from before the switch is the
    baseline. Same breach before -> not caused by this release; clean before -> rollback."""
    for before, expected in ((20.0, "notify"), (0.0, "rollback")):
        clock, metrics, observer = rig(rules={"error-rate": {"window": "2m"}})
        metrics.set("web-blue", before)
        clock.advance(300)
        since = clock.now()
        metrics.set("web-blue", None)  # no traffic on blue any more
        metrics.set("web-green", 20.0)
        verdicts = watch(clock, observer, since, 120)
        t, verdict = verdicts[-1]
        assert t == 120 and verdict.action == expected
        assert verdict.evidence["baseline_source"]["source"] == "before the switch"
        assert verdict.evidence["caused_by_release"] is (expected == "rollback")
        if expected == "notify":
            assert verdict.reason.startswith("not caused by this release")


def test_rollback_section_defaults_are_the_guides_table() -> None:
    """RB-1: an absent section is exactly the guide's five rules."""
    assert RollbackSettings().policy() == DEFAULT_ROLLBACK_POLICY


def test_rollback_section_overrides_merge_top_level_then_service(tmp_path: Path) -> None:
    doc = {
        "project": "shop",
        "environments": {"staging": {"platform": "local"}},
        "rollback": {"period": "10s", "rules": {"error-rate": {"threshold": 2}}},
        "services": {
            "web": {
                "port": 18080,
                "command": ["python3", "app.py"],
                "rollback": {
                    "max_replicas": 6,
                    "rules": {"error-rate": {"window": "1m"}, "cpu": {"enabled": False}},
                },
            }
        },
    }
    (tmp_path / "deployops.yaml").write_text(yaml.safe_dump(doc))
    project = load_project(tmp_path / "deployops.yaml")
    settings = effective_rollback(project, "web")
    assert settings.max_replicas == 6
    policy = settings.policy()
    assert "cpu" not in policy.names
    rule = policy.rule("error-rate").rule
    assert (rule.threshold, rule.period_s, rule.evaluation_periods) == (2.0, 10, 6)
    # A default rule keeps its window in time when only the period changes.
    assert policy.rule("memory").rule.window_s == 120


def test_impossible_rules_are_config_errors_with_paths(tmp_path: Path) -> None:
    """Bad input: impossible windows and thresholds -> every problem, each with its path."""
    doc = {
        "project": "shop",
        "environments": {"staging": {"platform": "local"}},
        "rollback": {
            "period": "1.5s",
            "rules": {"cpu": {"threshold": 120}},
        },
        "services": {
            "web": {
                "port": 18080,
                "command": ["python3", "app.py"],
                "rollback": {
                    "rules": {
                        "p99-latency": {"window": "3m", "escalate_after": "2m"},
                        "error-rate": {"datapoints_to_alarm": 9},
                        "memory": {"window": "10s"},
                        "queue": {"threshold": 3},
                    }
                },
            }
        },
    }
    (tmp_path / "deployops.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as err:
        load_project(tmp_path / "deployops.yaml")
    assert err.value.exit_code == 2
    paths = {i.path for i in err.value.issues}
    assert "rollback.period" in paths
    doc["rollback"]["period"] = "60s"  # type: ignore[index]
    (tmp_path / "deployops.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as err:
        load_project(tmp_path / "deployops.yaml")
    found = {i.path: i.message for i in err.value.issues}
    assert "between 0 and 100" in found["rollback.rules.cpu.threshold"]
    svc = "services.web.rollback.rules"
    assert "longer than the window" in found[f"{svc}.p99-latency.escalate_after"]
    assert "cannot exceed N" in found[f"{svc}.error-rate.datapoints_to_alarm"]
    assert "shorter than the period" in found[f"{svc}.memory.window"]
    assert "needs metric" in found[f"{svc}.queue.metric"]
    # The top level's problem is reported once, at the top level.
    assert not any(p.startswith(f"{svc}.cpu") for p in found)


class GridCollector:
    """A metric source like the local collector: one sample per 1 s interval on the epoch
    grid, written (visible) when its interval ends; the new version fails from ``broken_at``
    (20 % errors, 1,000 requests per second)."""

    name: ClassVar[str] = "grid"
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, clock: VirtualClock, broken_at: datetime) -> None:
        self.clock = clock
        self.broken_at = broken_at.timestamp()

    def query(self, query: MetricQuery) -> Measurement:
        if query.metric is not MetricName.ERROR_RATE:
            return Measurement(query=query)
        t0, t1, now = query.start.timestamp(), query.end.timestamp(), self.clock.now().timestamp()
        buckets: dict[int, float] = {}
        b = float(int(t0))
        while b < t1:
            served = min(1.0, max(0.0, b + 1 - self.broken_at))
            if b >= t0 and b + 1 <= now and served > 0:
                i = int((b - t0) // query.period_s)
                buckets[i] = buckets.get(i, 0.0) + served * 1000
            b += 1.0
        points = tuple(
            Datapoint(
                timestamp=query.start + timedelta(seconds=i * query.period_s),
                value=20.0,
                samples=int(n),
            )
            for i, n in sorted(buckets.items())
        )
        return Measurement(query=query, datapoints=points)


@pytest.mark.parametrize("phase", [0.05, 0.4, 0.95])
def test_rb1_decides_when_the_window_is_satisfied_whatever_the_sampler_phase(
    phase: float,
) -> None:
    """RB-1 reaction: with 1 s periods and the collector writing on the 1 s grid, a 3 s
    error-rate breach starting at the switch is decided at the first evaluation 3 s after
    the switch, wherever in a collector interval the switch fell (periods counted from the
    switch waited up to a whole interval more for the collector's next sample)."""
    clock = VirtualClock()
    clock.advance(1000 - clock.now().timestamp() % 1000 + phase)  # mid-interval switch
    since = clock.now()
    cloud = MemoryCloud(clock=clock)
    compute = MemoryCompute(cloud=cloud)
    td = compute.register_task_definition(TaskDefinitionSpec(family="web", version="1", port=1))
    compute.create_service("web-green", task_definition=td.ref, desired_count=2, target_group="")
    settings = RollbackSettings.model_validate(
        {
            "period": "1s",
            "min_requests": 5,
            "rules": {
                **{n: {"enabled": False} for n in DEFAULT_ROLLBACK_POLICY.names},
                "error-rate": {"enabled": True, "window": "3s"},
            },
        }
    )
    observer = RulesObserver.from_settings(
        compute=compute, metrics=GridCollector(clock, since), settings=settings
    )
    step = Observe(
        service="web-green",
        target_group="web-green",
        baseline_target_group="",
        window_s=8,
        interval_s=0.25,
        max_error_rate=1.0,
    )
    decided = None
    for _ in range(32):
        clock.advance(0.25)
        if observer.evaluate(step, since=since, now=clock.now()).action == "rollback":
            decided = (clock.now() - since).total_seconds()
            break
    assert decided is not None
    assert decided == pytest.approx(3.0, abs=1e-6), decided
