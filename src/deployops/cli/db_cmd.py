"""``deployops db start|stop|status``: the application's PostgreSQL on the local platform."""

from __future__ import annotations

from typing import Annotated

import typer

from deployops.cli._common import get_app

group = typer.Typer(
    help=(
        "The application's database on the local platform (PostgreSQL, backed up with "
        "pgBackRest).\n\n"
        "Examples:\n\n"
        "  deployops db start\n\n"
        "  deployops db status -o json"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="db")


@group.command("start")
def start(
    ctx: typer.Context,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default backups.database.port).")
    ] = None,
) -> None:
    """Create (first time) and start the primary, archiving WAL for point-in-time restores."""
    from deployops.cli._recovery import build_database

    app = get_app(ctx)
    env = app.environment_name()
    db = build_database(app, env)
    current = db.primary_id()
    if current is None:
        app.info("creating the application's database")
        inst = db.create_primary("primary-1", port=port or app.project.backups.database.port)
    else:
        inst = db.create_primary(current, port=port or app.project.backups.database.port)
    _show(app, inst.id, inst.host, inst.port)


@group.command("stop")
def stop(ctx: typer.Context) -> None:
    """Stop every instance of the application's database (data is kept)."""
    from deployops.cli._recovery import build_database

    app = get_app(ctx)
    db = build_database(app, app.environment_name())
    db.stop_all()
    if app.json:
        app.emit({"stopped": True})
    else:
        app.console.print("database stopped")


@group.command("status")
def status(ctx: typer.Context) -> None:
    """The primary (DB_HOST / DB_PORT for the application) and every other instance."""
    from deployops.cli._recovery import build_database

    app = get_app(ctx)
    db = build_database(app, app.environment_name())
    primary = db.primary_id()
    rows = [
        {
            "id": i.id,
            "host": i.host,
            "port": i.port,
            "role": i.role.value,
            "running": i.running,
            "primary": i.id == primary,
        }
        for i in db.instances()
    ]
    if app.json:
        app.emit({"primary": primary, "instances": rows})
        return
    if not rows:
        app.console.print("no database yet; create it with: deployops db start")
        return
    for r in rows:
        mark = "*" if r["primary"] else " "
        state = "running" if r["running"] else "stopped"
        app.console.print(f"{mark} {r['id']}  {r['host']}:{r['port']}  {r['role']}  {state}")


def _show(app: object, instance: str, host: str, port: int) -> None:
    from deployops.cli.app import App

    assert isinstance(app, App)
    if app.json:
        app.emit({"primary": instance, "host": host, "port": port})
    else:
        app.console.print(f"database {instance} running: DB_HOST={host} DB_PORT={port}")
