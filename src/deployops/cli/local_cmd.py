"""``deployops local up|down|status``: the embedded local platform's daemon."""

from __future__ import annotations

from typing import Any

import typer

from deployops.cli._common import get_app
from deployops.cli.app import App

group = typer.Typer(
    help=(
        "The embedded local platform: replicas behind HAProxy, metrics, PostgreSQL.\n\n"
        "Examples:\n\n"
        "  deployops local up\n\n"
        "  deployops local status -o json\n\n"
        "  deployops local down"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="local")


def _print_status(app: App, st: dict[str, Any]) -> None:
    if not st.get("running"):
        app.console.print(f"local/{st['environment']}: not running")
        app.console.print(f"  start it with `deployops local up -e {st['environment']}`")
        return
    workers = ", ".join(str(p) for p in st.get("haproxy_workers") or []) or "-"
    app.console.print(
        f"local/{st['environment']}: daemon pid {st['daemon_pid']} ({st['api']}), "
        f"HAProxy pid {st['haproxy_pid']} (workers {workers})"
        + ("" if st.get("haproxy_running") else " NOT RUNNING")
    )
    app.console.print("listeners:")
    for li in st.get("listeners", []):
        forwards = li["forwards"]
        # a weighted split (a canary step) shows each colour's share
        target = (
            ", ".join(f"{tg} {w}%" for tg, w in forwards)
            if len(forwards) > 1
            else ", ".join(f"{tg}" for tg, _ in forwards) or "-"
        )
        app.console.print(f"  {li['name']:<20} 127.0.0.1:{li['port']:<6} -> {target}")
    services = st.get("services", [])
    app.console.print("services:" if services else "services: none")
    for s in services:
        app.console.print(
            f"  {s['name']:<20} {s['task_definition']:<12} desired {s['desired']}  "
            f"running {s['running']}  healthy {s['healthy']}  -> {s['target_group']}"
        )
        for t in s.get("tasks", []):
            note = f"  ({t['last_error']})" if t.get("last_error") else ""
            app.console.print(
                f"    {t['task_id']:<36} {t['state']:<8} "
                f"{'healthy' if t['healthy'] else 'unhealthy':<9} port {t['port']} "
                f"pid {t['pid']}{note}"
            )
            if t.get("log"):
                app.console.print(f"      log: {t['log']}", markup=False)


@group.command("up")
def up(ctx: typer.Context) -> None:
    """Start the local platform (daemon, HAProxy); harmless if it already runs."""
    from deployops.clock import SystemClock
    from deployops.drivers.local import control

    app = get_app(ctx)
    env = app.environment_name()
    app.info(f"starting the local platform for {env}...")
    st = control.up(app.project, env, clock=SystemClock())
    if app.json:
        app.emit(st)
        return
    if st.get("already_running"):
        app.console.print(f"local/{env} is already running")
    _print_status(app, st)


@group.command("status")
def status(ctx: typer.Context) -> None:
    """Daemon and HAProxy pids, listeners and where they point, services and tasks."""
    from deployops.drivers.local import control

    app = get_app(ctx)
    st = control.status(app.project, app.environment_name())
    if app.json:
        app.emit(st)
        return
    _print_status(app, st)


@group.command("down")
def down(ctx: typer.Context) -> None:
    """Stop replicas, HAProxy and the daemon, and check that no process is left."""
    from deployops.clock import SystemClock
    from deployops.drivers.local import control

    app = get_app(ctx)
    env = app.environment_name()
    report = control.down(app.project, env, clock=SystemClock())
    if app.json:
        app.emit(report)
        return
    if not report["was_running"]:
        app.console.print(f"local/{env} was not running")
    else:
        app.console.print(f"local/{env} stopped (daemon pid {report['daemon_pid']})")
    if report["killed_leftovers"]:
        app.console.print(
            "killed leftover processes: " + ", ".join(map(str, report["killed_leftovers"]))
        )
