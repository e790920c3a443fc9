"""Builds the backup and recovery drivers for a command (the DR part of the composition root).

Where things live on the local platform:

* the application's database and its pgBackRest repository: ``.deployops/local/<env>/db/``
* the restic repository (default): ``.deployops/backups/<env>/restic``; its password comes
  from ``backups.app_data.password`` (``secret://NAME``) or a generated key file next to it
* operation journals: ``.deployops/operations/``; drill reports: ``.deployops/drills/``
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployops.cli.app import App
from deployops.clock import Clock, SystemClock
from deployops.domain.backup import BackupTarget
from deployops.domain.names import prod_listener, target_group
from deployops.errors import ConfigError, NotFoundError, UnsupportedError
from deployops.secret import Secret

if TYPE_CHECKING:
    from deployops.drivers.local.postgres import LocalPostgres
    from deployops.drivers.local.restic import ResticBackupRepo
    from deployops.engine.restore import RecoveryContext, RecoveryPlan, RecoveryRunner

__all__ = [
    "app_db_password",
    "build_database",
    "build_recovery_runner",
    "build_restic",
    "drills_dir",
    "journal_dir",
    "lock_key_for",
]


def _require_local(app: App, environment: str) -> None:
    if app.project.environment(environment).platform != "local":
        raise UnsupportedError(
            "backups and restores through this command run on the local platform only here",
            path=f"environments.{environment}.platform",
            hint="on AWS use scripts/restore-db.sh (RDS point-in-time restore)",
        )


def db_root(app: App, environment: str) -> Path:
    return app.project.state_dir / "local" / environment / "db"


def journal_dir(app: App) -> Path:
    return app.project.state_dir / "operations"


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


def build_recovery_runner(
    app: App,
    environment: str,
    *,
    with_platform: bool,
    progress: Callable[[str], None],
    clock: Clock | None = None,
) -> tuple[RecoveryRunner, RecoveryContext]:
    """A runner whose steps act through the local drivers, holding the service's deploy lock
    (a restore that repoints the application is a change to the live service)."""
    from deployops.engine.restore import RecoveryContext, RecoveryRunner
    from deployops.store import EventRecord
    from deployops.wiring import whoami

    clk = clock or SystemClock()
    ctx = RecoveryContext(clock=clk, progress=progress)
    ctx.database = build_database(app, environment, clk)
    ctx.backup_repo = build_restic(app, environment, clk)
    if with_platform:
        from deployops.drivers import build_platform

        plat = build_platform(app.project, environment, clock=clk, store=app.store)
        ctx.compute = plat.compute
        ctx.prober = plat.prober
        traffic = plat.traffic

        def live(service: str) -> str:
            listener = traffic.describe_listener(prod_listener(service))
            return listener.target_group or target_group(service, "blue")

        ctx.live_service = live
    owner = whoami()

    def acquire(plan: RecoveryPlan) -> None:
        from deployops.errors import LockHeldError
        from deployops.wiring import owner_alive

        key = lock_key_for(environment, plan.service)
        reason = f"{plan.kind} {plan.operation_id}"
        try:
            app.store.acquire_lock(key, owner=owner, reason=reason, now=clk.now())
        except LockHeldError:
            held = app.store.get_lock(key)
            # Resuming an operation whose process died (kill -9): its own stale lock is
            # taken over; anyone else's lock stands.
            if held is None or held.reason != reason or owner_alive(held.owner):
                raise
            app.store.release_lock(key, owner=held.owner)
            app.store.acquire_lock(key, owner=owner, reason=reason, now=clk.now())

    def release(plan: RecoveryPlan) -> None:
        app.store.release_lock(lock_key_for(environment, plan.service), owner=owner)

    def record(plan: RecoveryPlan, what: str, data: dict[str, Any]) -> None:
        app.store.add_event(
            EventRecord(
                ts=clk.now(),
                kind=f"{plan.kind}.{what}",
                message=f"{plan.kind} {plan.operation_id}: {what}",
                environment=environment,
                service=plan.service,
                data={k: str(v) for k, v in data.items()},
            )
        )

    runner = RecoveryRunner(
        ctx=ctx, journal_dir=journal_dir(app), acquire=acquire, release=release, record=record
    )
    return runner, ctx


def build_config_history(app: App, clock: Clock | None = None) -> Any:
    from deployops.drivers.local.confighistory import ConfigHistory

    return ConfigHistory(
        project_root=app.project.root,
        repo=app.project.state_dir / "config-history",
        clock=clock or SystemClock(),
    )
