"""The crash matrix: for every step boundary of a blue-green deploy, a rolling deploy and a
manual rollback, the deployops process is killed with SIGKILL — before the step's intent is
stored, between the intent and the act, and after the act before its outcome is stored — then
``deployops resume`` runs. Every point must end with traffic on a healthy version (20 requests
through the production listener, all answered 200), the lock released, no orphan replica
process, only the live colour running, and the recorded history complete (the operation
succeeded, every step succeeded once).

The kill is deterministic: the runner's test-only fault point (``DEPLOYOPS_TEST_CRASH_AT``,
see ``wiring.crash_point_from_environment``) makes the process SIGKILL itself at exactly that
point. ``make test`` runs a sample (first, middle and last step of each kind, each boundary once);
``make faults`` (``DEPLOYOPS_TEST_CRASH_MATRIX=full``) runs every point and writes the table
kept in ``docs/reliability.md``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import DEPLOYOPS, Project, running_project
from tests.fixtures_local import ENV

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

WHERES = ("before-intent", "before-act", "before-outcome")
FULL = os.environ.get("DEPLOYOPS_TEST_CRASH_MATRIX") == "full"
REPORT = Path(os.environ.get("DEPLOYOPS_TEST_CRASH_REPORT", "")) if FULL else None


@dataclass
class Outcome:
    kind: str
    seq: int
    step: str
    where: str
    killed: bool
    resumed: int
    healthy_answers: int
    result: str


def _run(project: Project, *args: str, crash_at: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DEPLOYOPS_TEST_CRASH_AT"}
    if crash_at:
        env["DEPLOYOPS_TEST_CRASH_AT"] = crash_at
    return subprocess.run(
        [DEPLOYOPS, "-c", str(project.path), "-e", ENV, *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )


def _plan(project: Project, *args: str) -> list[str]:
    """The step types of the plan ``args`` would run (its dry run)."""
    out = _run(project, "-o", "json", *args, "--dry-run")
    assert out.returncode == 0, out.stderr
    return [s["step"] for s in json.loads(out.stdout)["steps"]]


def _probe(project: Project, n: int = 20) -> int:
    ok = 0
    with httpx.Client(timeout=5.0) as client:
        for _ in range(n):
            if (
                client.get(f"http://127.0.0.1:{project.config.services['web'].port}/").status_code
                == 200
            ):
                ok += 1
    return ok


def _check_end_state(project: Project, op_id: str) -> str:
    """Empty when everything holds, else what does not."""
    problems = []
    live = project.prod_target_group()
    if project.service(live)["healthy"] < 1:
        problems.append(f"live {live} has no healthy replica")
    other = "web-blue" if live == "web-green" else "web-green"
    try:
        if project.service(other)["desired"] > 0:
            problems.append(f"{other} still wants {project.service(other)['desired']} replicas")
    except ValueError:
        pass  # never created
    locks = json.loads(_run(project, "-o", "json", "lock", "list").stdout)
    if locks:
        problems.append(f"locks left: {locks}")
    if project.orphans():
        problems.append(f"orphan processes {project.orphans()}")
    shown = json.loads(_run(project, "-o", "json", "deployments", "show", op_id).stdout)
    status = shown.get("status") or shown.get("deployment", {}).get("status")
    if status != "succeeded":
        problems.append(f"{op_id} is {status}")
    steps = shown.get("steps", [])
    if [s["status"] for s in steps] != ["succeeded"] * len(steps):
        problems.append(f"steps {[(s['seq'], s['status']) for s in steps]}")
    return "; ".join(problems)


def _points(kind: str, n: int) -> list[tuple[int, str]]:
    everything = [(seq, where) for seq in range(n) for where in WHERES]
    if FULL:
        return everything
    picked = sorted({0, n // 2, n - 1})
    return [(seq, WHERES[i % len(WHERES)]) for i, seq in enumerate(picked)]


@pytest.fixture(scope="module")
def outcomes() -> Iterator[list[Outcome]]:
    results: list[Outcome] = []
    yield results
    table = [
        "| operation | step | boundary | killed | resume exit | 200s of 20 | outcome |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in results:
        table.append(
            f"| {o.kind} | {o.seq + 1} {o.step} | {o.where} | {'yes' if o.killed else 'no'} "
            f"| {o.resumed} | {o.healthy_answers} | {o.result or 'healthy'} |"
        )
    print("\n".join(["", "crash matrix:", *table]))
    if REPORT is not None and results:
        REPORT.write_text("\n".join(table) + "\n", encoding="utf-8")


_versions = iter(range(1, 10_000))


def _crash_and_resume(
    project: Project, kind: str, label: str, args: list[str], seq: int, where: str, step: str
) -> Outcome:
    before = {d["id"] for d in project.deployments()}
    crashed = _run(project, *args, crash_at=f"{kind}:{seq}:{where}")
    killed = crashed.returncode == -signal.SIGKILL
    new = [d for d in project.deployments() if d["id"] not in before]
    op_id = new[0]["id"] if new else ""
    resumed = _run(project, "resume", op_id) if op_id else crashed
    result = "" if killed else f"not killed (exit {crashed.returncode}: {crashed.stderr[-300:]})"
    if resumed.returncode != 0:
        result += f" resume exit {resumed.returncode}: {resumed.stderr[-400:]}"
    answers = _probe(project)
    if answers != 20:
        result += f" only {answers} of 20 answered"
    if op_id:
        result += _check_end_state(project, op_id)
    return Outcome(label, seq, step, where, killed, resumed.returncode, answers, result.strip())


@pytest.mark.parametrize("strategy", ["blue-green", "rolling"])
def test_a_deploy_killed_at_any_step_boundary_resumes_to_a_healthy_version(
    strategy: str, outcomes: list[Outcome]
) -> None:
    with running_project(
        blue_green={"health_timeout": 20, "stability_window": 1, "sample_interval": 0.5}
    ) as project:
        assert _run(project, "deploy", "--version", "1.0.0").returncode == 0
        steps = _plan(project, "deploy", "--version", "1.0.1", "--strategy", strategy)
        mine = []
        for seq, where in _points("deploy", len(steps)):
            version = f"1.1.{next(_versions)}"
            args = ["deploy", "--version", version, "--strategy", strategy]
            mine.append(
                _crash_and_resume(project, "deploy", strategy, args, seq, where, steps[seq])
            )
        outcomes.extend(mine)
    bad = [o for o in mine if not o.killed or o.result]
    assert not bad, "\n".join(f"{o.kind} step {o.seq} {o.where}: {o.result}" for o in bad)


def test_a_rollback_killed_at_any_step_boundary_resumes_to_a_healthy_version(
    outcomes: list[Outcome],
) -> None:
    with running_project(
        blue_green={"health_timeout": 20, "stability_window": 1, "sample_interval": 0.5}
    ) as project:
        assert _run(project, "deploy", "--version", "1.0.0").returncode == 0
        mine = []
        steps: list[str] = []
        points: list[tuple[int, str]] | None = None
        i = 0
        while points is None or i < len(points):
            version = f"1.2.{next(_versions)}"
            assert _run(project, "deploy", "--version", version).returncode == 0
            target = project.deployments()[0]["id"]
            if points is None:
                steps = _plan(project, "rollback", target)
                points = _points("rollback", len(steps))
            seq, where = points[i]
            mine.append(
                _crash_and_resume(
                    project, "rollback", "rollback", ["rollback", target], seq, where, steps[seq]
                )
            )
            i += 1
        outcomes.extend(mine)
    bad = [o for o in mine if not o.killed or o.result]
    assert not bad, "\n".join(f"{o.kind} step {o.seq} {o.where}: {o.result}" for o in bad)


def _shift_points(steps: list[str]) -> list[tuple[int, str]]:
    """Every point with the full matrix; else the first shift and the first bake, each at
    another boundary (the steps a canary adds to blue-green)."""
    if FULL:
        return [(seq, where) for seq in range(len(steps)) for where in WHERES]
    shift, bake = steps.index("ShiftTraffic"), steps.index("Bake")
    return [(shift, "before-act"), (bake, "before-outcome")]


def test_a_canary_killed_at_any_step_boundary_resumes_to_a_healthy_version(
    outcomes: list[Outcome],
) -> None:
    """A canary (one 25 % step baked 1 s) killed at a shift or a bake resumes from the stored
    step: the weights are set again, the bake runs again, and the deploy ends on the new
    version with the same checks as the other kinds."""
    with running_project(
        blue_green={"health_timeout": 20, "stability_window": 1, "sample_interval": 0.5},
        canary={"steps": [25, 100], "bake": 1},
    ) as project:
        assert _run(project, "deploy", "--version", "1.0.0").returncode == 0
        steps = _plan(project, "deploy", "--version", "1.0.1", "--strategy", "canary")
        mine = []
        for seq, where in _shift_points(steps):
            version = f"1.3.{next(_versions)}"
            args = ["deploy", "--version", version, "--strategy", "canary"]
            mine.append(
                _crash_and_resume(project, "deploy", "canary", args, seq, where, steps[seq])
            )
        outcomes.extend(mine)
    bad = [o for o in mine if not o.killed or o.result]
    assert not bad, "\n".join(f"{o.kind} step {o.seq} {o.where}: {o.result}" for o in bad)
