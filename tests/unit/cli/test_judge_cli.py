"""The comparison of the colours through the CLI (issue 19): ``deployments show`` with each
judgement's reasons and the kept measurements, ``deployops decide`` on a held rollout (exit 2
for an unknown or not-held deployment, audited), and ``deployops rules backtest``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from deployops.cli.main import main
from deployops.clock import SystemClock
from deployops.config.project import load_project
from deployops.domain.judge import ColourWindow, JudgePolicy, JudgeVerdict, judge
from deployops.engine.observe.decision import record_judgement
from deployops.store import DeploymentRecord, MeasurementRecord, StateStore

T0 = datetime(2026, 11, 29, 8, 45, 1, tzinfo=UTC)
DEP = "dep-20261129-084501-aa01"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Result]:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)

    def run(cwd: Path, *args: str) -> Result:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["deployops", *args])
        code: int | str | None = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return Result(int(code or 0), out, err)

    return run


@pytest.fixture
def project(tmp_path: Path, cli: Callable[..., Result]) -> Path:
    folder = tmp_path / "shop-api"
    folder.mkdir()
    assert cli(folder, "init").returncode == 0
    return folder


def _store(folder: Path) -> StateStore:
    return StateStore.open(load_project(folder / "deployops.yaml").state_url())


def _deployment(store: StateStore, dep: str = DEP, *, status: str = "running") -> None:
    store.create_deployment(
        DeploymentRecord(
            id=dep,
            environment="staging",
            service="web",
            version="1.4.0",
            previous_version="1.3.1",
            strategy="canary",
            status=status,
            created_at=T0,
            updated_at=T0,
            target_group="web-green",
            previous_target_group="web-blue",
        )
    )


def _marginal_held(store: StateStore, dep: str = DEP) -> None:
    rng = np.random.default_rng(17)
    base = ColourWindow(1000, 1, tuple(float(v) for v in rng.normal(0.2, 0.02, 1000)))
    canary = ColourWindow(1000, 1, tuple(float(v) for v in rng.normal(0.2, 0.06, 1000)))
    result = judge(base, canary, JudgePolicy())
    assert result.verdict is JudgeVerdict.MARGINAL
    record_judgement(
        store,
        SystemClock(),
        deployment_id=dep,
        environment="staging",
        service="web",
        source="canary step 1 (5 %)",
        judgement=result,
        held=True,
    )


def test_show_lists_judgements_with_reasons_and_the_kept_measurements(
    project: Path, cli: Callable[..., Result]
) -> None:
    store = _store(project)
    try:
        _deployment(store)
        _marginal_held(store)
        store.add_measurements(
            [
                MeasurementRecord(
                    deployment_id=DEP,
                    environment="staging",
                    service="web",
                    colour="green",
                    role="new",
                    scope="web-green",
                    source="observe",
                    start=T0,
                    end=T0 + timedelta(minutes=1),
                    requests=500,
                    errors=15,
                    stats={"latency_ms": {"p99": 410.0}},
                )
            ]
        )
    finally:
        store.close()
    text = cli(project, "deployments", "show", DEP)
    assert text.returncode == 0, text.stderr
    assert "canary step 1 (5 %): marginal (score 80)" in text.stdout
    assert "held for a decision (deployops decide)" in text.stdout
    assert "fail: latency spread (std)" in text.stdout
    assert "pass: error rate 0.1 % vs 0.1 %" in text.stdout
    assert "measured  green (new, web-green): 1 windows, 500 requests, 15 errors (3 %)" in (
        text.stdout
    )
    doc = json.loads(cli(project, "-o", "json", "deployments", "show", DEP).stdout)
    (j,) = doc["judgements"]
    assert (j["verdict"], j["score"], j["held"], j["decision"]) == ("marginal", 80.0, True, None)
    assert {m["name"]: m["outcome"] for m in j["metrics"]} == {
        "error_rate": "pass",
        "latency": "pass",
        "latency_spread": "fail",
    }
    assert doc["measurements"][0]["error_rate"] == 3.0


def test_decide_records_the_decision_once_and_audits_it(
    project: Path, cli: Callable[..., Result]
) -> None:
    store = _store(project)
    try:
        _deployment(store)
        _marginal_held(store)
    finally:
        store.close()
    done = cli(project, "-o", "json", "decide", DEP[:18], "--continue", "--reason", "warm-up")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["decision"], doc["decision_reason"]) == ("continue", "warm-up")
    again = cli(project, "decide", DEP, "--rollback")
    assert again.returncode == 2
    assert "not held any more" in again.stderr and "already decided (continue" in again.stderr
    store = _store(project)
    try:
        actions = [(a.action, a.outcome) for a in store.audit_log(limit=None, oldest_first=True)]
    finally:
        store.close()
    assert ("decide", "ok") in actions


def test_decide_errors_are_usage_errors_exit_2(project: Path, cli: Callable[..., Result]) -> None:
    unknown = cli(project, "decide", "dep-nope", "--continue")
    assert unknown.returncode == 2
    assert "no deployment 'dep-nope'" in unknown.stderr
    store = _store(project)
    try:
        _deployment(store)
    finally:
        store.close()
    not_held = cli(project, "decide", DEP, "--rollback")
    assert not_held.returncode == 2
    assert f"deployment {DEP} is not held for a decision" in not_held.stderr
    assert "deployments show" in not_held.stderr
    both = cli(project, "decide", DEP, "--rollback", "--continue")
    assert both.returncode == 2
    assert "exactly one" in both.stderr
    neither = cli(project, "decide", DEP)
    assert neither.returncode == 2


# ---------------------------------------------------------------- rules backtest
BEGAN = datetime(2026, 11, 29, 8, 0, 0, tzinfo=UTC)  # on the minute: windows on the grid


def _history(store: StateStore, now: datetime) -> dict[str, str]:
    """Five observed deployments of web, built through the store API, 1 h apart:

    - ``fine3``: succeeded with 3 % errors in every window;
    - ``bad20``: 20 % errors, rolled back by error-rate at T+300 s;
    - ``clean``: succeeded with 0.5 % errors;
    - ``late3``: succeeded, 3 % errors in its last window only;
    - ``slow``: P99 1500 ms for 10 minutes, rolled back by p99-latency at T+600 s.
    """
    plans = {
        "fine3": ("succeeded", [3] * 5, 200.0, None),
        "bad20": ("rolled_back", [20] * 5, 200.0, ("error-rate", 300)),
        "clean": ("succeeded", [0.5] * 5, 200.0, None),
        "late3": ("succeeded", [0, 0, 0, 0, 3], 200.0, None),
        "slow": ("rolled_back", [0] * 10, 1500.0, ("p99-latency", 600)),
    }
    ids: dict[str, str] = {}
    for i, (name, (status, rates, p99, rolled)) in enumerate(plans.items()):
        began = now - timedelta(days=2) + timedelta(hours=i)
        began = began - timedelta(seconds=began.timestamp() % 60)
        dep = f"dep-20261127-0{i}0000-{name[:4]}"
        ids[name] = dep
        _deployment(store, dep, status=status)
        store.update_deployment(dep, created_at=began, updated_at=began)
        store.record_step_intent(dep, 4, "Observe", phase="switch", params={}, now=began)
        rows = []
        for k, rate in enumerate(rates):
            start = began + timedelta(minutes=k)
            rows.append(_window(dep, "new", "web-green", start, 200, round(rate * 2), p99))
        for k in range(1, 6):  # the previous version before the switch: clean and fast
            start = began - timedelta(minutes=k)
            rows.append(_window(dep, "previous", "web-blue", start, 200, 0, 200.0))
        store.add_measurements(rows)
        if rolled is not None:
            from deployops.store import DecisionRecord

            rule, after = rolled
            store.add_decision(
                DecisionRecord(
                    ts=began + timedelta(seconds=after),
                    rule=rule,
                    verdict="breaching",
                    action="rollback",
                    deployment_id=dep,
                )
            )
    return ids


def _window(
    dep: str, role: str, scope: str, start: datetime, requests: int, errors: int, p99: float
) -> MeasurementRecord:
    return MeasurementRecord(
        deployment_id=dep,
        environment="staging",
        service="web",
        colour=scope.rsplit("-", 1)[1],
        role=role,
        scope=scope,
        source="observe",
        start=start,
        end=start + timedelta(minutes=1),
        requests=requests,
        errors=errors,
        stats={"latency_ms": {"Average": p99 / 4, "p50": p99 / 5, "p99": p99}},
    )


STRICTER = """\
rollback:
  rules:
    error-rate: {threshold: 2, window: 2m}   # was 5 % over 5 minutes
    p99-latency: {enabled: false}
"""


def test_backtest_names_the_deployments_a_stricter_policy_would_have_decided_differently(
    project: Path, cli: Callable[..., Result]
) -> None:
    """Hand-computed: error-rate > 2 % in 2 of 2 one-minute periods rolls back ``fine3``
    (a release that was fine) at T+120 s and ``bad20`` at T+120 s instead of T+300 s
    (earlier); ``late3`` has one breaching period only and ``clean`` none (same); without
    the p99 rule ``slow`` is a miss. The project's own policy replays every one as it
    happened."""
    store = _store(project)
    try:
        ids = _history(store, SystemClock().now())
    finally:
        store.close()
    (project / "stricter.yaml").write_text(STRICTER)
    proc = cli(project, "-o", "json", "rules", "backtest", "--policy", "stricter.yaml")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    by = {d["deployment_id"]: d for d in doc["deployments"]}
    assert set(by) == set(ids.values())
    changes = {name: by[dep]["change"] for name, dep in ids.items()}
    assert changes == {
        "fine3": "false_rollback",
        "bad20": "earlier",
        "clean": "same",
        "late3": "same",
        "slow": "miss",
    }
    assert sorted(doc["changed"]) == sorted([ids["fine3"], ids["bad20"], ids["slow"]])
    fine, bad, slow = by[ids["fine3"]], by[ids["bad20"]], by[ids["slow"]]
    assert (fine["would"]["outcome"], fine["would"]["t_plus_s"]) == ("rollback", 120.0)
    assert fine["would"]["rule"] == "error-rate"
    assert fine["happened"]["rolled_back"] is False
    assert (bad["would"]["t_plus_s"], bad["happened"]["t_plus_s"]) == (120.0, 300.0)
    assert bad["happened"]["by"] == "error-rate"
    assert (slow["would"]["outcome"], slow["happened"]["t_plus_s"]) == ("none", 600.0)

    same = json.loads(cli(project, "-o", "json", "rules", "backtest").stdout)
    assert same["changed"] == []
    replayed = {d["deployment_id"]: d for d in same["deployments"]}
    assert replayed[ids["bad20"]]["would"]["t_plus_s"] == 300.0
    assert replayed[ids["slow"]]["would"]["t_plus_s"] == 600.0

    text = cli(project, "rules", "backtest", "--policy", "stricter.yaml", "-e", "staging")
    assert text.returncode == 0
    assert "would roll back a release that was fine" in text.stdout
    assert "earlier rollback" in text.stdout and "miss" in text.stdout
    assert "5 deployments replayed, 3 decided differently" in text.stdout
    # Older than --since: not replayed.
    recent = json.loads(cli(project, "-o", "json", "rules", "backtest", "--since", "1d").stdout)
    assert recent["deployments"] == []


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (
            "rollback:\n  rules:\n    error-rate: {threshold: high}\n",
            "rollback.rules.error-rate.threshold",
        ),
        ("rollback:\n  analysis: {confidance: 0.9}\n", "rollback.analysis.confidance: unknown key"),
        (
            "rollback:\n  analysis: {pass_score: 60, marginal_score: 80}\n",
            "rollback.analysis.marginal_score: must not be above pass_score",
        ),
        ("rollback: [1, 2\n", "not valid YAML"),
        ("- a list\n", "must be a mapping with a rollback: section"),
    ],
)
def test_backtest_with_an_invalid_policy_file_exits_2_naming_the_key(
    project: Path, cli: Callable[..., Result], content: str, named: str
) -> None:
    (project / "bad.yaml").write_text(content)
    proc = cli(project, "rules", "backtest", "--policy", "bad.yaml")
    assert proc.returncode == 2
    assert named in proc.stderr
    assert "bad.yaml" in proc.stderr


def test_backtest_with_an_unreadable_policy_file_exits_2(
    project: Path, cli: Callable[..., Result]
) -> None:
    proc = cli(project, "rules", "backtest", "--policy", "missing.yaml")
    assert proc.returncode == 2
    assert "cannot read the policy file" in proc.stderr
    empty = cli(project, "rules", "backtest")
    assert empty.returncode == 0
    assert "no deployment with kept measurements" in empty.stdout
