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
