"""The thin CLI over the foundation: help with examples, ``init``, the deployment history
(DEP-4: every deployment is recorded and can be shown) and the deploy locks (one deploy at a time;
breaking a lock needs --force and a reason and is audited). Runs the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployops.cli.main import main
from deployops.config.project import load_project
from deployops.store import DecisionRecord, DeploymentRecord, EventRecord, StateStore

DEPLOYOPS = Path(sys.executable).parent / "deployops"
T0 = datetime(2026, 11, 29, 8, 45, 1, tzinfo=UTC)


def _proc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real console script, as from a shell pipe: no terminal and no COLUMNS."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run(
        [str(DEPLOYOPS), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Result]:
    """``main()`` in this process (fast: imports are warm) with argv, cwd and captured output;
    exit codes and stderr exactly as the console script produces them."""
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
    """A folder with a freshly written deployops.yaml (via ``deployops init``)."""
    folder = tmp_path / "shop-api"
    folder.mkdir()
    proc = cli(folder, "init")
    assert proc.returncode == 0, proc.stderr
    return folder


def _store(folder: Path) -> StateStore:
    return StateStore.open(load_project(folder / "deployops.yaml").state_url())


# ---------------------------------------------------------------- help
def test_help_lists_groups_with_examples(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "--help")
    assert proc.returncode == 0
    for group in ("init", "deployments", "lock", "config"):
        assert f"  {group} " in proc.stdout
    assert "Examples:" in proc.stdout
    assert "deployops deployments list -o json" in proc.stdout
    for group in ("deployments", "lock", "init"):
        sub = _proc(tmp_path, group, "--help")
        assert sub.returncode == 0
        assert "Examples:" in sub.stdout, group
    version = _proc(tmp_path, "--version")
    assert version.stdout.startswith("deployops ")


# ---------------------------------------------------------------- init
def test_init_writes_a_valid_file_named_after_the_folder(
    project: Path, cli: Callable[..., Result]
) -> None:
    cfg = load_project(project / "deployops.yaml")
    assert cfg.project == "shop-api"
    assert "# " in (project / "deployops.yaml").read_text()  # annotated


def test_init_writes_environments_that_all_run_on_the_local_platform_and_validate_clean(
    project: Path, cli: Callable[..., Result]
) -> None:
    """A new user can deploy every environment `init` wrote on this machine: none needs AWS,
    and each validates without a warning."""
    cfg = load_project(project / "deployops.yaml")
    assert set(cfg.environments) == {"development", "staging", "production"}
    assert {name: env.platform for name, env in cfg.environments.items()} == {
        "development": "local",
        "staging": "local",
        "production": "local",
    }
    for env in cfg.environments:
        proc = cli(project, "config", "validate", "-e", env, "--offline")
        assert proc.returncode == 0, (env, proc.stderr)
        assert "warning" not in proc.stderr, (env, proc.stderr)


def test_init_refuses_to_overwrite_without_force(project: Path, cli: Callable[..., Result]) -> None:
    path = project / "deployops.yaml"
    path.write_text(path.read_text() + "# my edits\n")
    refused = cli(project, "init")
    assert refused.returncode == 2
    assert "already exists" in refused.stderr
    assert "--force" in refused.stderr
    assert path.read_text().endswith("# my edits\n")
    forced = cli(project, "-o", "json", "init", "--force", "--project", "billing")
    assert forced.returncode == 0
    assert json.loads(forced.stdout) == {"written": str(path), "project": "billing"}
    assert load_project(path).project == "billing"


def test_init_with_c_writes_there(tmp_path: Path, cli: Callable[..., Result]) -> None:
    target = tmp_path / "conf" / "deployops.yaml"
    target.parent.mkdir()
    proc = cli(tmp_path, "-c", str(target), "init")
    assert proc.returncode == 0
    assert load_project(target).project == "conf"


# ---------------------------------------------------------------- deployments
def test_list_json_is_empty_on_a_new_project(project: Path, cli: Callable[..., Result]) -> None:
    proc = cli(project, "-o", "json", "deployments", "list")
    assert (proc.returncode, proc.stdout) == (0, "[]\n")
    text = cli(project, "deployments", "list")
    assert text.returncode == 0
    assert "no deployments yet" in text.stdout


def _seed(folder: Path) -> None:
    store = _store(folder)
    try:
        for i, (env, version, status) in enumerate(
            [("staging", "1.3.2", "succeeded"), ("production", "1.4.0", "rolled_back")]
        ):
            at = T0 + timedelta(minutes=i)
            store.create_deployment(
                DeploymentRecord(
                    id=f"dep-20261129-08{45 + i}01-7f3{i}",
                    environment=env,
                    service="web",
                    version=version,
                    previous_version="1.3.1",
                    strategy="blue-green",
                    status=status,
                    created_at=at,
                    updated_at=at,
                )
            )
        dep = "dep-20261129-084601-7f31"
        store.record_step_intent(dep, 1, "SwitchListener", phase="switch", params={}, now=T0)
        store.record_step_outcome(dep, 1, status="succeeded", result={"took_ms": 3}, now=T0)
        store.add_event(
            EventRecord(ts=T0, kind="rollback", message="error rate 7.9%", deployment_id=dep)
        )
        store.add_decision(
            DecisionRecord(
                ts=T0,
                rule="error_rate",
                verdict="breached",
                action="rollback",
                deployment_id=dep,
                evidence={"threshold": 5.0},
            )
        )
    finally:
        store.close()


def test_list_shows_recorded_deployments_newest_first_dep4(
    project: Path, cli: Callable[..., Result]
) -> None:
    _seed(project)
    proc = cli(project, "-o", "json", "deployments", "list")
    rows = json.loads(proc.stdout)
    assert [(r["id"], r["environment"], r["status"]) for r in rows] == [
        ("dep-20261129-084601-7f31", "production", "rolled_back"),
        ("dep-20261129-084501-7f30", "staging", "succeeded"),
    ]
    only = json.loads(cli(project, "-o", "json", "-e", "staging", "deployments", "list").stdout)
    assert [r["version"] for r in only] == ["1.3.2"]
    text = _proc(project, "deployments", "list")
    assert "dep-20261129-084601-7f31" in text.stdout
    assert "rolled_back" in text.stdout
    assert "[yellow]" not in text.stdout  # markup rendered, not printed
    # piped output keeps whole cells: ids can be copied from it
    assert "production  web" in text.stdout
    assert "…" not in text.stdout


def test_show_text_and_json_by_prefix(project: Path, cli: Callable[..., Result]) -> None:
    _seed(project)
    shown = cli(project, "-o", "json", "deployments", "show", "dep-20261129-0846")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["id"] == "dep-20261129-084601-7f31"
    assert [(s["name"], s["status"]) for s in doc["steps"]] == [("SwitchListener", "succeeded")]
    assert doc["events"][0]["message"] == "error rate 7.9%"
    assert doc["decisions"][0]["evidence"] == {"threshold": 5.0}
    text = cli(project, "deployments", "show", "dep-20261129-084601-7f31")
    assert text.returncode == 0
    assert "1.3.1 -> 1.4.0" in text.stdout
    assert "SwitchListener" in text.stdout
    assert "error_rate: breached -> rollback" in text.stdout


def test_show_and_list_say_whether_a_deployment_is_under_watch_rb1(
    project: Path, cli: Callable[..., Result]
) -> None:
    """The watch after the switch: still under watch and until when, or how it ended (a
    rollback at a time for a reason, superseded by a newer deployment)."""
    _seed(project)
    store = _store(project)
    watching, rolled = "dep-20261129-084501-7f30", "dep-20261129-084601-7f31"
    try:
        store.update_operation(
            watching,
            detail={
                "watch": {
                    "state": "watching",
                    "since": T0.isoformat(),
                    "until": (T0 + timedelta(hours=24)).isoformat(),
                    "basis": "until the old target group web-blue is deleted",
                }
            },
        )
        store.update_operation(
            rolled,
            detail={
                "watch": {
                    "state": "rolled_back",
                    "since": T0.isoformat(),
                    "until": (T0 + timedelta(hours=24)).isoformat(),
                    "ended_at": (T0 + timedelta(hours=2)).isoformat(),
                    "rolled_back_at": (T0 + timedelta(hours=2)).isoformat(),
                    "rollback_id": "dep-20261129-104601-aa11",
                    "reason": "error-rate: error rate 20% above 5%",
                }
            },
        )
    finally:
        store.close()
    doc = json.loads(cli(project, "-o", "json", "deployments", "show", watching).stdout)
    assert doc["watch"]["state"] == "watching"
    assert doc["watch"]["under_watch"] is True
    assert doc["watch"]["until"] == (T0 + timedelta(hours=24)).isoformat()
    text = cli(project, "deployments", "show", watching).stdout
    assert "watch     under watch until 2026-11-30T08:45:01+00:00" in text
    assert "until the old target group web-blue is deleted" in text
    doc = json.loads(cli(project, "-o", "json", "deployments", "show", rolled).stdout)
    assert (doc["watch"]["state"], doc["watch"]["under_watch"]) == ("rolled_back", False)
    text = cli(project, "deployments", "show", rolled).stdout
    assert (
        "rolled back at 2026-11-29T10:45:01+00:00 by dep-20261129-104601-aa11 for error-rate: "
        "error rate 20% above 5%"
    ) in text
    rows = json.loads(cli(project, "-o", "json", "deployments", "list").stdout)
    assert {r["id"]: r["watch"]["state"] for r in rows} == {
        watching: "watching",
        rolled: "rolled_back",
    }
    listed = _proc(project, "deployments", "list").stdout
    assert "WATCH" in listed and "rolled back" in listed and "until 2026-11-30" in listed


def test_show_unknown_id_exit_2(project: Path, cli: Callable[..., Result]) -> None:
    proc = cli(project, "deployments", "show", "dep-nope")
    assert proc.returncode == 2
    assert "no deployment 'dep-nope'" in proc.stderr
    assert "deployments list" in proc.stderr


# ---------------------------------------------------------------- locks
def test_lock_list_and_audited_force_release(project: Path, cli: Callable[..., Result]) -> None:
    store = _store(project)
    try:
        store.acquire_lock("production/web", owner="ci-runner-7", reason="deploy 1.4.0", now=T0)
    finally:
        store.close()
    listed = json.loads(cli(project, "-o", "json", "lock", "list").stdout)
    assert [(lk["key"], lk["owner"], lk["reason"]) for lk in listed] == [
        ("production/web", "ci-runner-7", "deploy 1.4.0")
    ]
    assert listed[0]["age_seconds"] > 0
    assert "held by ci-runner-7" in cli(project, "lock", "list").stdout

    no_force = _proc(project, "lock", "release", "production/web", "--reason", "stale")
    assert no_force.returncode == 2
    assert "--force" in no_force.stderr
    no_reason = cli(project, "lock", "release", "production/web", "--force")
    assert no_reason.returncode == 2
    assert json.loads(cli(project, "-o", "json", "lock", "list").stdout) != []

    done = cli(project, "lock", "release", "production/web", "--force", "--reason", "ci host died")
    assert done.returncode == 0, done.stderr
    assert "was held by ci-runner-7" in done.stdout
    assert cli(project, "lock", "list").stdout.strip() == "no locks held"
    store = _store(project)
    try:
        # the command's own entry (SEC-4, cli/access.py) follows the store's
        entry = next(e for e in store.audit_log() if e.action == "lock.force_release")
    finally:
        store.close()
    assert (entry.action, entry.target) == ("lock.force_release", "production/web")
    assert entry.detail["reason"] == "ci host died"
    assert entry.detail["held_by"] == "ci-runner-7"

    again = cli(project, "lock", "release", "production/web", "--force", "--reason", "x")
    assert again.returncode == 2
    assert "no lock named 'production/web'" in again.stderr


@pytest.mark.parametrize(
    "url",
    ["mysql://deployer:hunter2@db.internal/deployops", "postgresql://deployer:hunter2@db:x/d"],
)
def test_bad_database_url_exit_2_one_error_nothing_written(project: Path, url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["DEPLOYOPS_DATABASE_URL"] = url
    proc = subprocess.run(
        [str(DEPLOYOPS), "deployments", "list"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("error: DEPLOYOPS_DATABASE_URL: ")
    assert [ln for ln in lines if ln.startswith("error:")] == [lines[0]]
    assert len(lines) <= 2  # the error and its fix
    assert "Traceback" not in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout
    assert not (project / ".deployops").exists()


def test_help_stays_lazy(tmp_path: Path) -> None:
    """``deployops --help`` must stay fast (goal < 300 ms, bench/startup.py): it may not import
    the store, the schema library or any vendor SDK."""
    probe = (
        "import sys\n"
        "sys.argv = ['deployops', '--help']\n"
        "from deployops.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = {'sqlalchemy', 'pydantic', 'alembic', 'boto3', 'botocore', 'httpx', 'psycopg',\n"
        "         'yaml', 'psutil', 'jinja2', 'cryptography', 'fastapi', 'uvicorn'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout.strip().splitlines()[-1] == "[]"
