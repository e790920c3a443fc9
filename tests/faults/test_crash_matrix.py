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
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DEPLOYOPS, FAST_RULES, Project, running_project
from tests.e2e.dr_support import db_project, start_db_and_deploy
from tests.fixtures_local import ENV

WHERES = ("before-intent", "before-act", "before-outcome")
FULL = os.environ.get("DEPLOYOPS_TEST_CRASH_MATRIX") == "full"

# One test runs every point of one operation kind: 30 kills and resumes of a blue-green deploy
# take 5-10 minutes on a quiet 2-core machine and more under load, past pytest's 300 s; the
# sample's few points took over 300 s on a machine at load 19.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.timeout(3600 if FULL else 900),
]
__all__ = ["db_project"]  # the fixture
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


# Kinds whose every point is a slow real restore: one point in the sample (the middle step,
# where the restored database is verified but not yet promoted); ``make faults`` runs them all.
_ONE_POINT_SAMPLE = {"restore"}


def _points(kind: str, n: int) -> list[tuple[int, str]]:
    everything = [(seq, where) for seq in range(n) for where in WHERES]
    if FULL:
        return everything
    if kind in _ONE_POINT_SAMPLE:
        return [(n // 2, WHERES[1])]
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


# ---------------------------------------------------------------- secret rotation (SEC-3)
# The database password rotating on a real PostgreSQL (SCRAM logins, alternating roles) while
# the sample database app serves through HAProxy; the rotation's six steps, and the revert
# path of a rotation whose test step fails (the server refuses the next role's logins), are
# each killed at every boundary, then `deployops resume ID`.
ROTATION_STEPS = 6  # CreatePending .. VerifyCurrent
# failing at TestPending (2) appends RevertTarget, DiscardPending, VerifyRestored (6, 7, 8)
ROTATION_REVERT = (6, 7, 8)
DB_APP = Path(__file__).resolve().parents[1] / "integration" / "secrets"


def _rotation_points() -> list[tuple[int, str, bool]]:
    """(step, boundary, revert path): every point under ``make faults``; a sample otherwise
    (Promote between intent and act, and one point of the revert path)."""
    if FULL:
        forward = [(seq, where, False) for seq in range(ROTATION_STEPS) for where in WHERES]
        return forward + [(seq, where, True) for seq in ROTATION_REVERT for where in WHERES]
    return [
        (3, WHERES[1], False),
        (7, WHERES[1], True),
    ]


@dataclass
class _RotationRig:
    project: Project
    admin: str
    hba: Path

    def secrets(self) -> Any:
        from deployops.drivers.local.encrypted import EncryptedFileSecretStore

        folder = self.project.path.parent / ".deployops" / "secrets"
        return EncryptedFileSecretStore(path=folder / f"{ENV}.json", key_file=folder / f"{ENV}.key")

    def current(self) -> tuple[int, str, dict[str, str]]:
        """How many versions are current, the current version id and its value."""
        from deployops.domain.secrets import Stage

        store = self.secrets()
        info = store.describe("database-password")
        count = sum(Stage.CURRENT in v.stages for v in info.versions)
        value = json.loads(store.get_version("database-password", stage=Stage.CURRENT).reveal())
        return count, info.current.version_id if info.current else "", value

    def logs_in(self, doc: dict[str, str]) -> bool:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(self.admin)
        params.update(user=doc["username"], password=doc["password"])
        try:
            with psycopg.connect(make_conninfo("", **params), connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def refuse_logins(self, user: str | None) -> None:
        """``pg_hba.conf`` rejecting ``user``'s logins (None: as it was). The admin keeps
        logging in by trust, so the rotation's ``ALTER ROLE`` still runs."""
        import psycopg

        from tests.integration.secrets.pgauth import HBA

        text = HBA.format(admin="postgres")
        if user is not None:
            text = text.replace(
                "host all all", f"host all {user} 127.0.0.1/32 reject\nhost all all", 1
            )
        self.hba.write_text(text)
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")


@contextmanager
def _rotation_project() -> Iterator[_RotationRig]:
    """The sample database app as the service, its password a managed secret of the local
    encrypted store, PostgreSQL checking SCRAM logins, the platform up."""
    import shutil
    import tempfile

    import yaml
    from psycopg.conninfo import conninfo_to_dict

    from deployops.clock import SystemClock
    from deployops.config.project import load_project
    from deployops.drivers.local import control
    from deployops.drivers.local.encrypted import write_key_file
    from tests.fixtures_local import write_project
    from tests.integration.secrets.pgauth import password_cluster

    with password_cluster() as (cluster, admin):
        root = Path(tempfile.mkdtemp(prefix="dops-rot-"))
        path = write_project(
            root,
            command=[sys.executable, "db_app.py"],
            working_dir=str(DB_APP),
            blue_green={"health_timeout": 20, "stability_window": 1, "sample_interval": 0.5},
        )
        doc = yaml.safe_load(path.read_text())
        doc["secrets"] = {
            "stores": {ENV: {"type": "encrypted-file"}},
            "managed": {
                "database-password": {"database": {"dsn": admin, "users": ["app_a", "app_b"]}}
            },
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        envs = root / "config" / "environments"
        envs.mkdir(parents=True)
        (envs / f"{ENV}.yaml").write_text(
            "APP_NAME: demo\nDB_HOST: 127.0.0.1\nDB_NAME: app\n"
            f"DB_PORT: '{conninfo_to_dict(admin)['port']}'\n"
            "DB_USER: secret://database-password#username\n"
            "DB_PASSWORD: secret://database-password#password\n"
        )
        write_key_file(root / ".deployops" / "secrets" / f"{ENV}.key")
        config = load_project(path)
        clock = SystemClock()
        control.up(config, ENV, clock=clock)
        try:
            yield _RotationRig(
                project=Project(config), admin=admin, hba=cluster.data / "pg_hba.conf"
            )
        finally:
            report = control.down(config, ENV, clock=clock)
            shutil.rmtree(root, ignore_errors=True)
            assert report["killed_leftovers"] == [], report


def _rotation_end_state(rig: _RotationRig, op_id: str, expect: str) -> str:
    """Empty when everything holds, else what does not."""
    project = rig.project
    problems = []
    count, _version, value = rig.current()
    if count != 1:
        problems.append(f"{count} current values")
    if not rig.logs_in(value):
        problems.append("the current value does not log in")
    live = project.prod_target_group()
    svc = project.service(live)
    if svc["healthy"] < svc["desired"]:
        problems.append(f"{live}: {svc['healthy']} of {svc['desired']} replicas healthy")
    locks = json.loads(_run(project, "-o", "json", "lock", "list").stdout)
    if locks:
        problems.append(f"locks left: {locks}")
    if project.orphans():
        problems.append(f"orphan processes {project.orphans()}")
    shown = json.loads(_run(project, "-o", "json", "deployments", "show", op_id).stdout)
    if shown.get("status") != expect:
        problems.append(f"{op_id} is {shown.get('status')}, expected {expect}")
    steps = shown.get("steps", [])
    bad = [(s["seq"], s["name"], s["status"]) for s in steps if s["status"] != "succeeded"]
    allowed = [b for b in bad if expect == "rolled_back" and b[1] == "TestPending"]
    if bad != allowed:
        problems.append(f"steps {bad}")
    return "; ".join(problems)


@pytest.mark.timeout(1800 if FULL else 600)  # 27 points in full, about 12 s each
def test_a_rotation_killed_at_any_step_boundary_resumes_to_exactly_one_working_value(
    outcomes: list[Outcome],
) -> None:
    """SEC-3: a database password rotation (and its revert) SIGKILLed at each step boundary;
    `deployops resume` ends with exactly one current value that logs in, every replica serving
    through production on a valid password (20 of 20 answered 200: each request queries the
    database), the locks released and the rotation recorded as finished or put back."""
    names = [
        "CreatePending",
        "SetOnTarget",
        "TestPending",
        "Promote",
        "RestartReplicas",
        "VerifyCurrent",
        "RevertTarget",
        "DiscardPending",
        "VerifyRestored",
    ]
    mine = []
    with _rotation_project() as rig:
        project = rig.project
        first = _run(project, "secrets", "rotate", "database-password")
        assert first.returncode == 0, first.stderr
        assert _run(project, "deploy", "--version", "1.0.0").returncode == 0
        assert _probe(project) == 20
        for seq, where, revert in _rotation_points():
            before = {d["id"] for d in _rotation_ops(project)}
            _count, old_version, old_value = rig.current()
            if revert:  # the next role's logins are refused: TestPending fails
                rig.refuse_logins("app_b" if old_value["username"] == "app_a" else "app_a")
            try:
                crashed = _run(
                    project,
                    "secrets",
                    "rotate",
                    "database-password",
                    crash_at=f"rotate:{seq}:{where}",
                )
                new = [d for d in _rotation_ops(project) if d["id"] not in before]
                op_id = new[0]["id"] if new else ""
                resumed = _run(project, "resume", op_id) if op_id else crashed
            finally:
                if revert:
                    rig.refuse_logins(None)
            killed = crashed.returncode == -signal.SIGKILL
            result = (
                "" if killed else f"not killed (exit {crashed.returncode}: {crashed.stderr[-300:]})"
            )
            expect_exit = 1 if revert else 0
            if resumed.returncode != expect_exit:
                result += f" resume exit {resumed.returncode}: {resumed.stderr[-400:]}"
            answers = _probe(project)
            if answers != 20:
                result += f" only {answers} of 20 answered"
            if op_id:
                result += _rotation_end_state(rig, op_id, "rolled_back" if revert else "succeeded")
                _c, version, _v = rig.current()
                if revert and version != old_version:
                    result += " the value from before is not current after the revert"
                if not revert and version == old_version:
                    result += " the rotation did not move the current value"
            else:
                result += " no operation recorded"
            label = "rotate (revert)" if revert else "rotate"
            mine.append(
                Outcome(
                    label,
                    seq,
                    names[seq],
                    where,
                    killed,
                    resumed.returncode,
                    answers,
                    result.strip(),
                )
            )
    outcomes.extend(mine)
    bad = [o for o in mine if not o.killed or o.result]
    assert not bad, "\n".join(f"{o.kind} step {o.seq} {o.where}: {o.result}" for o in bad)


def _rotation_ops(project: Project) -> list[dict[str, Any]]:
    out = _run(project, "-o", "json", "deployments", "list", "--kind", "rotate", "-n", "100")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


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
    # No load runs here: the comparison of the colours never has its samples, so it is
    # marginal after a short wait and the rollout continues (rather than holding for a
    # decision nobody sends).
    rollback = {
        **FAST_RULES,
        "analysis": {"on_marginal": "continue"},
        "insufficient_data": {"max_extension": "2s"},
    }
    with running_project(
        blue_green={"health_timeout": 20, "stability_window": 1, "sample_interval": 0.5},
        canary={"steps": [25, 100], "bake": 1},
        rollback=rollback,
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
