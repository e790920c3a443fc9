"""The crash matrix: for every step boundary of a blue-green deploy, a rolling deploy, a
manual rollback and a database restore (DR-4), the deployops process is killed with SIGKILL —
before the step's intent is stored, between the intent and the act, and after the act before
its outcome is stored — then ``deployops resume`` runs. Every point must end with traffic on a
healthy version (20 requests through the production listener, all answered 200), the lock
released, no orphan replica process, only the live colour running, and the recorded history
complete (the operation succeeded, every step succeeded once); a restore also leaves the
running database untouched until the restored one is verified.

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
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DEPLOYOPS, Project, running_project
from tests.e2e.dr_support import db_project, start_db_and_deploy
from tests.fixtures_local import ENV

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]
__all__ = ["db_project"]  # the fixture

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


def _db_status(project: Project) -> dict[str, Any]:
    out = _run(project, "-o", "json", "db", "status")
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def _bodies(project: Project) -> list[str]:
    url = f"http://127.0.0.1:{project.config.services['web'].port}/items?limit=1000"
    return [i["body"] for i in httpx.get(url, timeout=10).json()["items"]]


@pytest.mark.timeout(3600 if FULL else 600)  # a restore per point: ~40 s each
def test_dr4_a_restore_killed_at_any_step_boundary_resumes_with_the_database_untouched(
    db_project: Project, outcomes: list[Outcome]
) -> None:
    """DR-4: ``restore db`` (restore into a new instance, verify, promote, repoint) killed at
    every step boundary, then ``deployops resume``. Until the restored instance is verified
    (every point before PromoteDatabase acts) the running primary is the one before, still
    running, and the application serves its rows; after the resume the restored instance is
    the primary, the replicas use it, the service answers, the lock is released."""
    project = db_project
    start_db_and_deploy(project)
    url = f"http://127.0.0.1:{project.config.services['web'].port}/items"
    assert httpx.post(url, json={"body": "kept"}, timeout=10).status_code == 201
    assert _run(project, "backup", "run", "--target", "database").returncode == 0
    planned = _run(project, "-o", "json", "restore", "db", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    steps = [s["type"] for s in json.loads(planned.stdout)["plan"]["steps"]]
    promote = steps.index("PromoteDatabase")
    mine = []
    for seq, where in _points("restore", len(steps)):
        before = _db_status(project)["primary"]
        rows = _bodies(project)
        known = {d["id"] for d in project.deployments()}
        crashed = _run(project, "restore", "db", crash_at=f"restore:{seq}:{where}")
        killed = crashed.returncode == -signal.SIGKILL
        result = (
            "" if killed else f"not killed (exit {crashed.returncode}: {crashed.stderr[-300:]})"
        )
        new = [d for d in project.deployments() if d["id"] not in known]
        op_id = new[0]["id"] if new else ""
        untouched = seq < promote or (seq == promote and where != "before-outcome")
        if untouched:
            status = _db_status(project)
            by = {i["id"]: i for i in status["instances"]}
            if status["primary"] != before or not by[before]["running"]:
                result += f" the primary changed before the restore was verified: {status}"
            if _bodies(project) != rows:
                result += " the application's rows changed before the restore was verified"
        resumed = _run(project, "resume", op_id) if op_id else crashed
        if resumed.returncode != 0:
            result += f" resume exit {resumed.returncode}: {resumed.stderr[-400:]}"
        answers = _probe(project)
        if answers != 20:
            result += f" only {answers} of 20 answered"
        if op_id:
            result += _check_end_state(project, op_id)
            if _db_status(project)["primary"] != op_id:
                result += f" the restored {op_id} is not the primary"
        if "kept" not in _bodies(project):
            result += " the restored database lost the row before the backup"
        mine.append(
            Outcome("restore", seq, steps[seq], where, killed, resumed.returncode, answers, result)
        )
    outcomes.extend(mine)
    bad = [o for o in mine if not o.killed or o.result.strip()]
    assert not bad, "\n".join(f"{o.kind} step {o.seq} {o.where}: {o.result}" for o in bad)
