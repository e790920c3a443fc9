"""``deployops restore db|app-data|resume``: recovery into new instances (DR-2, DR-4)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from deployops.cli._common import get_app
from deployops.cli.app import App

group = typer.Typer(
    help=(
        "Restore the database to a point in time or a backup, into a NEW instance that is "
        "verified before the application is moved to it; restore application data.\n\n"
        "Examples:\n\n"
        "  deployops restore db --to-time '2026-03-01T09:41:00Z'\n\n"
        "  deployops restore db --snapshot 20260301-094100F --no-repoint\n\n"
        "  deployops restore app-data --snapshot 4f2a9c1e --into /srv/restore\n\n"
        "  deployops restore resume rst-20260301-094500"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="restore")


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without a zone is UTC."""
    from deployops.errors import ConfigError

    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{text!r} is not a time",
            path="--to-time",
            hint="write it like 2026-03-01T09:41:00Z (ISO 8601, UTC when no zone is given)",
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _progress(app: App) -> Any:
    return lambda message: app.info(f"  {message}")


def _show(app: App, doc: dict[str, Any]) -> None:
    if app.json:
        app.emit(doc)
        return
    plan = doc["plan"]
    app.console.print(f"{plan['kind']} {plan['operation_id']}: {doc['status']}")
    for step, result in zip(plan["steps"], doc["results"], strict=True):
        mark = "done" if result is not None else "pending"
        extra = ""
        if result:
            keys = ("instance", "host", "port", "items", "service", "task_definition")
            extra = " ".join(f"{k}={result[k]}" for k in keys if k in result)
        app.console.print(f"  {step['type']}: {mark} {extra}".rstrip())


@group.command("db")
def db(
    ctx: typer.Context,
    to_time: Annotated[
        str | None, typer.Option("--to-time", help="Point in time (ISO 8601, UTC default).")
    ] = None,
    snapshot: Annotated[
        str | None, typer.Option("--snapshot", help="A backup id from `deployops backup list`.")
    ] = None,
    service: Annotated[str | None, typer.Option("--service", help="Service to repoint.")] = None,
    no_repoint: Annotated[
        bool,
        typer.Option("--no-repoint", help="Restore and verify only; the application stays."),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds for the rolling restart.")
    ] = 300.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan only.")] = False,
) -> None:
    """Restore the database into a new instance, verify it, then roll the application's
    replicas onto it (new DB_HOST / DB_PORT). The running database is untouched until the
    restored one is verified."""
    from deployops.cli._recovery import build_recovery_runner
    from deployops.clock import SystemClock
    from deployops.domain.backup import RestoreTarget
    from deployops.engine.restore import plan_db_restore
    from deployops.errors import ConfigError
    from deployops.ids import new_id

    app = get_app(ctx)
    env = app.environment_name()
    if to_time and snapshot:
        raise ConfigError(
            "--to-time and --snapshot exclude each other",
            path="restore db",
            hint="give one: deployops restore db --to-time T, or --snapshot ID",
        )
    target = RestoreTarget(
        to_time=parse_time(to_time) if to_time else None, backup_id=snapshot or None
    )
    svc = app.service_name(service)
    op = _op_id(new_id)
    plan = plan_db_restore(
        operation_id=op,
        service=svc,
        target=target,
        instance_id=op,
        repoint=not no_repoint,
        repoint_timeout_s=timeout,
        reason=f"restore to {target.describe()}",
    )
    if dry_run:
        from deployops.engine.restore import _encode

        doc = {"plan": _encode(plan), "status": "planned", "results": [None] * len(plan.steps)}
        _show(app, doc)
        return
    runner, _ = build_recovery_runner(
        app, env, with_platform=not no_repoint, progress=_progress(app), clock=SystemClock()
    )
    app.info(f"restore {op}: to {target.describe()}")
    _show(app, runner.run(plan))


@group.command("app-data")
def app_data(
    ctx: typer.Context,
    snapshot: Annotated[str, typer.Option("--snapshot", help="Snapshot id or latest.")] = "latest",
    into: Annotated[
        Path | None,
        typer.Option("--into", help="Directory to restore into (default a new folder)."),
    ] = None,
) -> None:
    """Restore application data from restic into a directory (never over the live data)."""
    from deployops.cli._recovery import build_recovery_runner
    from deployops.engine.restore import plan_app_data_restore
    from deployops.ids import new_id

    app = get_app(ctx)
    env = app.environment_name()
    op = _op_id(new_id)
    target = into or app.project.state_dir / "restores" / op
    plan = plan_app_data_restore(
        operation_id=op, service=app.service_name(None), snapshot_id=snapshot, target_dir=target
    )
    runner, _ = build_recovery_runner(app, env, with_platform=False, progress=_progress(app))
    _show(app, runner.run(plan))


@group.command("resume")
def resume(
    ctx: typer.Context,
    operation: Annotated[str, typer.Argument(help="The restore's id (rst-...).")],
) -> None:
    """Continue a restore that was interrupted, from its first unfinished step."""
    from deployops.cli._recovery import build_recovery_runner

    app = get_app(ctx)
    runner, _ = build_recovery_runner(
        app, app.environment_name(), with_platform=True, progress=_progress(app)
    )
    _show(app, runner.resume(operation))


def _op_id(new_id: Any) -> str:
    from deployops.clock import SystemClock

    return str(new_id("rst", SystemClock().now())).lower()


@group.command("config")
def config(
    ctx: typer.Context,
    at: Annotated[
        str | None, typer.Option("--at", help="The moment whose configuration to restore.")
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="Show the recorded versions.")] = False,
) -> None:
    """Put back deployops.yaml and config/ as they were at a moment (from the config history
    in .deployops/config-history). The current files are recorded first."""
    from deployops.cli._recovery import build_config_history
    from deployops.errors import ConfigError

    app = get_app(ctx)
    history = build_config_history(app)
    if list_:
        rows = [
            {"commit": v.commit[:12], "at": v.at.isoformat(), "message": v.message}
            for v in history.versions()
        ]
        if app.json:
            app.emit(rows)
        else:
            for r in rows:
                app.console.print(f"{r['commit']}  {r['at']}  {r['message']}")
        return
    if not at:
        raise ConfigError(
            "which moment? restore config needs --at TIME",
            path="--at",
            hint="deployops restore config --list shows the recorded versions",
        )
    version, written = history.restore(parse_time(at))
    doc = {
        "restored": version.commit[:12],
        "recorded_at": version.at.isoformat(),
        "files": [str(p.relative_to(app.project.root)) for p in written],
    }
    if app.json:
        app.emit(doc)
    else:
        app.console.print(
            f"configuration of {version.at.isoformat()} ({version.commit[:12]}) restored: "
            + ", ".join(doc["files"])
        )
