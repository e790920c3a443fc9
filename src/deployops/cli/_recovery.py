"""Builds the backup and recovery drivers for a command (the DR part of the composition root).

Where things live on the local platform:

* the application's database and its pgBackRest repository: ``.deployops/local/<env>/db/``
* the restic repository (default): ``.deployops/backups/<env>/restic``; its password comes
  from ``backups.app_data.password`` (``secret://NAME``) or a generated key file next to it
* drill reports: ``.deployops/drills/``; restores and drills themselves are operations in
  the state store, run by the one operation runner (``wiring.build_runner``)
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployops.cli.app import App
from deployops.clock import Clock, SystemClock
from deployops.domain.backup import BackupTarget
from deployops.errors import ConfigError, NotFoundError, UnsupportedError
from deployops.secret import Secret

if TYPE_CHECKING:
    from deployops.drivers.aws.rds import RdsDatabase
    from deployops.drivers.local.confighistory import ConfigHistory
    from deployops.drivers.local.postgres import LocalPostgres
    from deployops.drivers.local.restic import ResticBackupRepo
    from deployops.engine.dr_schedule import DrSchedule
    from deployops.engine.events import Reporter
    from deployops.engine.operation import OperationKind
    from deployops.engine.runner import Runner
    from deployops.ports.recovery import Database

__all__ = [
    "app_db_password",
    "build_database",
    "build_dr_schedule",
    "build_rds",
    "build_recovery_runner",
    "build_restic",
    "drills_dir",
    "lock_key_for",
    "recovery_database",
    "recovery_kinds",
    "recovery_reporter",
    "resume_recovery",
]


def _require_local(app: App, environment: str) -> None:
    if app.project.environment(environment).platform != "local":
        raise UnsupportedError(
            "backups and restores through this command run on the local platform only here",
            path=f"environments.{environment}.platform",
            hint="on AWS, deployops restore db (and scripts/restore-db.sh) restores RDS; backups "
            "there are RDS's own automated backups and snapshots",
        )


def db_root(app: App, environment: str) -> Path:
    return app.project.state_dir / "local" / environment / "db"


def drills_dir(app: App) -> Path:
    return app.project.state_dir / "drills"


def _key_file(path: Path) -> Secret:
    """A generated secret kept in a 0600 file (created once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24))
    return Secret(path.read_text().strip())


def _resolve_ref(app: App, environment: str, ref: str, *, path: str) -> Secret:
    from deployops.config.appconfig import paths_for
    from deployops.config.appconfig.loader import default_secret_store

    if not ref.startswith("secret://"):
        raise ConfigError(
            "a password is given as a reference like secret://restic-password, never inline",
            path=path,
            hint="put the value in .env.local and write secret://NAME here",
        )
    store = default_secret_store(paths_for(app.project), environment)
    return store.get(ref.removeprefix("secret://"))


def app_db_password(app: App, environment: str) -> Secret:
    """The application role's password: the secret ``db-password`` if the secret store has
    it, else a generated one kept under the database's directory."""
    from deployops.config.appconfig import paths_for
    from deployops.config.appconfig.loader import default_secret_store

    store = default_secret_store(paths_for(app.project), environment)
    try:
        return store.get("db-password")
    except NotFoundError:
        return _key_file(db_root(app, environment) / "app-password")


def build_database(app: App, environment: str, clock: Clock | None = None) -> LocalPostgres:
    from deployops.drivers.local.postgres import LocalPostgres

    _require_local(app, environment)
    cfg = app.project.backups.database
    return LocalPostgres(
        root=db_root(app, environment),
        policy=app.project.backups.policy(BackupTarget.DATABASE),
        clock=clock or SystemClock(),
        database=cfg.name,
        user=cfg.user,
        app_password=app_db_password(app, environment),
        process_max=cfg.process_max,
    )


def build_rds(app: App, environment: str, clock: Clock | None = None) -> RdsDatabase:
    """The RDS instance of an AWS environment: the one behind the Terraform outputs'
    ``db_endpoint`` (``<instance>.<hash>.<region>.rds.amazonaws.com:5432``)."""
    from deployops.config.terraform_outputs import load_terraform_outputs
    from deployops.drivers.aws._session import AwsSession, AwsSettings
    from deployops.drivers.aws.rds import RdsDatabase

    env = app.project.environment(environment)
    outputs_file = Path(env.aws.terraform_outputs or "tf-outputs.json")
    if not outputs_file.is_absolute():
        outputs_file = app.project.root / outputs_file
    endpoint = load_terraform_outputs(outputs_file).db_endpoint
    session = AwsSession(
        AwsSettings(
            region=env.aws.region,
            profile=env.aws.profile,
            role_arn=env.aws.role_arn,
            endpoint_url=env.aws.endpoint_url,
        )
    )
    return RdsDatabase(
        client=session.client("rds"),
        clock=clock or SystemClock(),
        instance=endpoint.partition(".")[0],
    )


def recovery_database(app: App, environment: str, clock: Clock | None = None) -> Database:
    """The environment's ``Database``: RDS on AWS, the local PostgreSQL otherwise."""
    if app.project.environment(environment).platform == "aws":
        return build_rds(app, environment, clock)
    return build_database(app, environment, clock)


def build_restic(app: App, environment: str, clock: Clock | None = None) -> ResticBackupRepo:
    from deployops.drivers.local.restic import ResticBackupRepo

    cfg = app.project.backups.app_data
    base = app.project.state_dir / "backups" / environment
    repository = cfg.repository or str(base / "restic")
    if cfg.password:
        password = _resolve_ref(app, environment, cfg.password, path="backups.app_data.password")
    else:
        password = _key_file(base / "restic.key")
    return ResticBackupRepo(
        repository=repository,
        password=password,
        clock=clock or SystemClock(),
        cache_dir=base / "restic-cache",
    )


def app_data_paths(app: App) -> list[Path]:
    return [
        (p if p.is_absolute() else app.project.root / p)
        for p in (Path(x) for x in app.project.backups.app_data.paths)
    ]


def lock_key_for(environment: str, service: str) -> str:
    from deployops.engine.deploy import lock_key

    return lock_key(environment, service)


def recovery_reporter(app: App) -> Reporter:
    """Live step lines on stderr for people; nothing extra for ``-o json`` (its one document
    is the command's output)."""
    from deployops.cli.reporting import TextReporter
    from deployops.engine.events import null_reporter

    if app.json:
        return null_reporter
    return TextReporter(app.err, quiet=app.quiet)


def build_recovery_runner(
    app: App,
    environment: str,
    *,
    clock: Clock | None = None,
    extra_ports: Mapping[type[Any], object] | None = None,
    database: bool = True,
) -> tuple[Runner, Database | None]:
    """The environment's operation runner with the restore and drill step handlers, over the
    platform's ports plus the database, the application-data repository, the configuration
    history and the environment's database endpoint (what a repoint records)."""
    from deployops.engine.drill import DRILL_HANDLERS
    from deployops.engine.restore import HANDLERS, ConfigHistoryPort
    from deployops.ports.recovery import BackupRepo, Database, DatabaseEndpoints
    from deployops.wiring import build_runner, database_endpoints

    clk = clock or SystemClock()
    db = recovery_database(app, environment, clk) if database else None
    ports: dict[type[Any], object] = {
        **({Database: db, BackupRepo: build_restic(app, environment, clk)} if db else {}),
        ConfigHistoryPort: build_config_history(app, clk),
        DatabaseEndpoints: database_endpoints(app.store, environment, clk),
        **dict(extra_ports or {}),
    }
    runner = build_runner(
        app.project,
        environment,
        store=app.store,
        reporter=recovery_reporter(app),
        handlers=HANDLERS.merged(DRILL_HANDLERS),
        extra_ports=ports,
        clock=clk,
    )
    return runner, db


def build_dr_schedule(app: App, environment: str, clock: Clock) -> DrSchedule:
    """The controller's disaster-recovery loops for the environment (freshness, test
    restores, drills), from the ``backups:`` policies."""
    from datetime import datetime

    from deployops.domain.backup import BackupTarget, DrillScenario
    from deployops.engine.dr_schedule import DrSchedule
    from deployops.engine.testrestore import run_test_restore
    from deployops.wiring import build_notify

    cfg = app.project.backups
    local = app.project.environment(environment).platform == "local"

    def newest_points() -> dict[BackupTarget, datetime | None]:
        """What exists here: the database once it was started, application data once its
        paths exist or its repository does."""
        out: dict[BackupTarget, datetime | None] = {}
        if not local:
            return out
        db = build_database(app, environment, clock)
        if db.primary_id():
            points = db.backups()
            archived = db.archived_until() if points else None
            stamps = [p.finished_at for p in points] + ([archived] if archived else [])
            out[BackupTarget.DATABASE] = max(stamps) if stamps else None
        repo = build_restic(app, environment, clock)
        if repo.exists() or any(p.exists() for p in app_data_paths(app)):
            snaps = repo.snapshots() if repo.exists() else []
            out[BackupTarget.APP_DATA] = snaps[-1].finished_at if snaps else None
        return out

    def test_restore() -> dict[str, Any] | None:
        db = build_database(app, environment, clock)
        if not db.primary_id():
            return None  # no database here yet: nothing to test
        repo = build_restic(app, environment, clock)
        return run_test_restore(database=db, repo=repo if repo.exists() else None)

    def run_drill(sc: DrillScenario) -> object:
        import subprocess
        import sys
        from pathlib import Path

        argv = [str(Path(sys.executable).parent / "deployops"), "-c", str(app.project.path)]
        argv += ["-e", environment, "-q", "dr", "drill", sc.value]
        argv += ["--i-understand", "--reason", "scheduled by the controller"]
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=7200)

    return DrSchedule(
        environment=environment,
        store=app.store,
        clock=clock,
        newest_points=newest_points,
        policies=cfg.policies(),
        notify=build_notify(app.project, environment, app.store, clock),
        test_restore=test_restore if local else None,
        test_restore_every_s=float(cfg.test_restore.every),
        drill_every_s=float(cfg.drills.every),
        run_drill=run_drill if (local and cfg.drills.automatic) else None,
    )


def recovery_kinds() -> dict[str, OperationKind]:
    """The kinds of operation the recovery commands run (and `deployops resume` continues)."""
    from deployops.engine.drill import DRILL_KIND
    from deployops.engine.restore import RESTORE_KIND

    return {k.name: k for k in (RESTORE_KIND, DRILL_KIND)}


def resume_recovery(app: App, op_id: str) -> None:
    """Continue an interrupted restore or drill from its first unfinished step, with the
    plan it was started with; show it as its own command does."""
    from deployops.engine.drill import DRILL_KIND
    from deployops.errors import ConfigError
    from deployops.wiring import owner_alive, whoami

    kinds = recovery_kinds()
    op = app.store.find_operation(op_id, kinds=tuple(kinds))
    if op is None:
        raise ConfigError(
            f"no restore or drill {op_id!r}",
            path="DEPLOYMENT_ID",
            hint="`deployops deployments list` shows the ids",
        )
    extra: dict[type[Any], object] = {}
    database = op.plan.get("strategy") != "restore-config"
    if op.kind == DRILL_KIND.name:
        from deployops.cli.dr_cmd import drill_site
        from deployops.engine.drill import DrillSite

        extra[DrillSite] = drill_site(app, op.environment, op.plan.get("settings", {}))
    runner, _ = build_recovery_runner(app, op.environment, extra_ports=extra, database=database)
    runner.resume(op.id, kinds=kinds, owner=whoami(), owner_alive=owner_alive)
    if op.kind == DRILL_KIND.name:
        from deployops.cli.dr_cmd import show_drill

        show_drill(app, op.id)
        return
    from deployops.cli.restore_cmd import operation_doc, show_restore

    show_restore(app, operation_doc(app, op.id))


def build_config_history(app: App, clock: Clock | None = None) -> ConfigHistory:
    from deployops.drivers.local.confighistory import ConfigHistory

    return ConfigHistory(
        project_root=app.project.root,
        repo=app.project.state_dir / "config-history",
        clock=clock or SystemClock(),
    )
