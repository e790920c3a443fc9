"""Automatic and manual rollback on the real local platform under load (RB-1, RB-2, RB-3),
with the guide's rules on 1 s periods and windows of a few seconds."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from deployops.drivers.local.load import Load
from tests.e2e.conftest import FAST_RULES, Project, running_project

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def prod_url(p: Project) -> str:
    return f"http://127.0.0.1:{p.config.services['web'].port}/"


def show(p: Project, deployment_id: str) -> dict[str, object]:
    out = p.cli("-o", "json", "deployments", "show", deployment_id)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


HEALTH_SMOKE_ONLY = {
    "health_timeout": 20,
    "stability_window": 4,
    "sample_interval": 0.5,
    # Only /health: a smoke check of / would catch a 20 % failure by chance one time in five,
    # before the rules had anything to judge.
    "smoke_checks": [{"path": "/health", "status": 200}],
}


@pytest.fixture
def health_smoke_project() -> Iterator[Project]:
    with running_project(blue_green=HEALTH_SMOKE_ONLY) as p:
        yield p


def test_twenty_percent_errors_roll_back_with_an_incident_report_rb1_rb2(
    health_smoke_project: Project,
) -> None:
    project = health_smoke_project
    assert project.cli("deploy", "--version", "1.0.0").returncode == 0
    with Load(prod_url(project), workers=3, max_seconds=90) as load:
        out = project.cli("deploy", "--version", "2.0.0")
    assert out.returncode == 3, out.stderr
    assert project.prod_target_group() == "web-blue"
    assert project.service("web-blue")["healthy"] == 2
    bad = next(d for d in project.deployments() if d["version"] == "2.0.0")
    assert bad["status"] == "rolled_back"
    detail = show(project, str(bad["id"]))
    decisions = detail["decisions"]
    assert isinstance(decisions, list)
    assert any(d["action"] == "rollback" and "error" in d["rule"] for d in decisions)
    report = project.path.parent / ".deployops" / "reports" / f"{bad['id']}.md"
    assert report.exists()
    text = report.read_text()
    assert "2.0.0" in text
    assert "error" in text.lower()
    # Issue 19: the observation kept its raw windows, with the collector's latency
    # distribution, and the report sums them; the backtest replays the deployment.
    measured = {m["role"]: m for m in detail["measurements"]}  # type: ignore[attr-defined]
    assert measured["new"]["requests"] > 0 and measured["new"]["errors"] > 0
    assert measured["new"]["latency_distribution"] is True
    assert "## Measurements" in text
    replay = project.cli("-o", "json", "rules", "backtest", "--since", "1h")
    assert replay.returncode == 0, replay.stderr
    replayed = {d["deployment_id"]: d for d in json.loads(replay.stdout)["deployments"]}
    assert replayed[bad["id"]]["happened"]["rolled_back"] is True
    # The project's own rules replayed on the kept windows roll it back too (the time may
    # differ by the sample interval the live observation judged at).
    assert replayed[bad["id"]]["would"]["outcome"] == "rollback"
    # the rollback is its own record, linked to the deployment it reverts
    linked = [d for d in project.deployments() if d.get("reverts") == bad["id"]]
    assert linked
    assert linked[0]["kind"] == "rollback"
    # users saw some failures (20 % of what reached 2.0.0 for a few seconds), then none
    res = load.result
    assert res.by_version.get("1.0.0", 0) > 0
    assert res.failed < res.total * 0.2


def test_p99_of_1_5_s_warns_then_rolls_back_after_escalation_rb1() -> None:
    with running_project() as project:
        assert project.cli("deploy", "--version", "1.0.0").returncode == 0
        with Load(prod_url(project), workers=12, max_seconds=90):
            out = project.cli("deploy", "--version", "3.0.0")
        assert out.returncode == 3, out.stderr
        bad = next(d for d in project.deployments() if d["version"] == "3.0.0")
        decisions = show(project, str(bad["id"]))["decisions"]
        assert isinstance(decisions, list)
        actions = [(d["rule"], d["action"]) for d in decisions]
        p99 = [a for r, a in actions if "p99" in r]
        assert "notify" in p99, actions  # the warning first
        assert p99[-1] == "rollback", actions  # then the rollback once it lasted
        assert project.prod_target_group() == "web-blue"


def test_memory_leak_scales_out_then_rolls_back_rb1() -> None:
    """The leak passes 90 % of the 512 MiB reservation in about 5 s: scale out 2 -> 4, the new
    replicas leak too, no room is left under max_replicas 4 -> roll back."""
    rules = {**FAST_RULES, "max_replicas": 4}
    settings = {
        "health_timeout": 20,
        "stability_window": 15,
        "sample_interval": 0.5,
        "smoke_checks": [{"path": "/health", "status": 200}],
    }
    with running_project(rollback=rules, blue_green=settings) as project:
        assert project.cli("deploy", "--version", "1.0.0").returncode == 0
        with Load(prod_url(project), workers=2, max_seconds=90):
            out = project.cli("deploy", "--version", "4.0.0")
        assert out.returncode == 3, out.stderr
        bad = next(d for d in project.deployments() if d["version"] == "4.0.0")
        decisions = show(project, str(bad["id"]))["decisions"]
        assert isinstance(decisions, list)
        actions = [d["action"] for d in decisions if "memory" in d["rule"]]
        assert "scale_out" in actions, decisions
        assert actions[-1] == "rollback", decisions
        assert project.prod_target_group() == "web-blue"


def test_manual_rollback_dry_run_changes_nothing_then_rolls_back_rb3(project: Project) -> None:
    assert project.cli("deploy", "--version", "1.0.0").returncode == 0
    assert project.cli("deploy", "--version", "1.1.0").returncode == 0
    second = project.deployments()[0]

    def state() -> tuple[object, ...]:
        st = project.status()
        return (
            json.dumps(st["listeners"], sort_keys=True),
            sorted((s["name"], s["desired"], s["task_definition"]) for s in st["services"]),
            [(d["id"], d["status"]) for d in project.deployments()],
        )

    before = state()
    dry = project.cli("rollback", str(second["id"]), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    for check in ("previous version", "database compatibility", "configuration", "user impact"):
        assert check in dry.stdout
    assert "nothing was changed" in dry.stdout
    assert state() == before
    done = project.cli("rollback", str(second["id"]))
    assert done.returncode == 3, done.stderr  # 3 = rolled back
    assert project.prod_target_group() == "web-blue"
    body = project.cli("health", "--service", "web")
    assert body.returncode == 0
