"""``deployops alarms``: alarm states and history (MON-1)."""

from __future__ import annotations

from typing import Annotated

import typer

from deployops.cli._common import fmt_time, get_app

group = typer.Typer(
    help=(
        "Alarms (MON-1) and their state history.\n\n"
        "Examples:\n\n"
        "  deployops alarms status\n\n"
        "  deployops alarms history HighErrorRate\n\n"
        "  deployops alarms sync -e production --dry-run"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="alarms")


@group.command("status")
def status(ctx: typer.Context) -> None:
    """Every configured alarm with its state, since when and why (as `deployops serve` last
    evaluated it; INSUFFICIENT_DATA until then)."""
    from deployops.config.monitoring import alarm_definitions

    app = get_app(ctx)
    env = app.environment_name()
    alarms = alarm_definitions(app.project.alarms)
    states = {(s.service, s.alarm): s for s in app.store.alarm_states(environment=env)}
    rows = []
    for service in app.project.services:
        for a in alarms:
            st = states.get((service, a.name))
            rows.append(
                {
                    "environment": env,
                    "service": service,
                    "alarm": a.name,
                    "state": st.state if st else "INSUFFICIENT_DATA",
                    "since": st.since.isoformat() if st else None,
                    "evaluated_at": st.evaluated_at.isoformat() if st else None,
                    "reason": st.reason if st else "not evaluated yet (is `deployops serve` up?)",
                    "condition": a.rule.describe(),
                    "action": a.action.value,
                    "severity": a.severity.value,
                }
            )
    if app.json:
        app.emit(rows)
        return
    from rich.table import Table

    table = Table(title=f"alarms in {env}")
    for col in ("service", "alarm", "state", "since", "condition", "action", "reason"):
        table.add_column(col)
    colour = {"OK": "green", "ALARM": "red", "INSUFFICIENT_DATA": "yellow"}
    for service in app.project.services:
        for a in alarms:
            st = states.get((service, a.name))
            state = st.state if st else "INSUFFICIENT_DATA"
            table.add_row(
                service,
                a.name,
                f"[{colour.get(state, 'white')}]{state}[/]",
                fmt_time(st.since) if st else "-",
                a.rule.describe(),
                f"{a.action.value} ({a.severity.value})",
                st.reason if st else "not evaluated yet (is `deployops serve` up?)",
            )
    app.console.print(table)


@group.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Alarm name, e.g. HighErrorRate.")],
    service: Annotated[str | None, typer.Option("--service", help="Only this service.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Newest N changes.")] = 50,
) -> None:
    """The alarm's state changes, oldest first, with the reason for each."""
    from deployops.config.monitoring import alarm_definitions
    from deployops.errors import NotFoundError

    app = get_app(ctx)
    env = app.environment_name()
    names = [a.name for a in alarm_definitions(app.project.alarms)]
    if name not in names:
        import difflib

        close = difflib.get_close_matches(name, names, n=1)
        raise NotFoundError(
            f"no alarm named {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
            path="NAME",
            hint=f"configured alarms: {', '.join(names)}",
        )
    svc = app.service_name(service) if service or app.project.default_service() else None
    records = app.store.alarm_history(name, environment=env, service=svc, limit=limit)
    if app.json:
        app.emit(
            [
                {
                    "ts": h.ts.isoformat(),
                    "service": h.service,
                    "previous": h.previous,
                    "state": h.state,
                    "reason": h.reason,
                    "action": h.action,
                    "severity": h.severity,
                }
                for h in records
            ]
        )
        return
    if not records:
        app.console.print(f"{name} has not changed state in {env} yet")
        return
    for h in records:
        action = f" -> {h.action}" if h.action else ""
        app.console.print(
            f"{fmt_time(h.ts)}  {h.service}  {h.previous} → {h.state}{action}: {h.reason}",
            markup=False,
        )


@group.command("sync")
def sync(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the changes; create or update nothing.")
    ] = False,
) -> None:
    """Render the alarms of deployops.yaml to CloudWatch (aws environments) and print what
    changed. Safe to run again: alarms that already match are left alone.

    Examples:

      deployops alarms sync -e production --dry-run

      deployops alarms sync -e production -o json
    """
    from deployops.clock import SystemClock
    from deployops.config.monitoring import alarm_definitions
    from deployops.drivers import build_platform
    from deployops.errors import UnsupportedError

    app = get_app(ctx)
    env = app.environment_name()
    if app.project.environment(env).platform != "aws":
        raise UnsupportedError(
            f"environment {env!r} does not run on aws: its alarms are evaluated by "
            "`deployops serve`, there is nothing to sync",
            path=f"environments.{env}.platform",
            hint="run `deployops alarms status` to see them, or pass -e with an aws environment",
        )
    from deployops.drivers.aws import alarm_sync

    platform = build_platform(app.project, env, clock=SystemClock(), store=app.store)
    try:
        changes = alarm_sync(
            platform,
            alarm_definitions(app.project.alarms),
            service=app.service_name(None),
            dry_run=dry_run,
        )
    finally:
        platform.close()
    if app.json:
        app.emit(
            {
                "environment": env,
                "dry_run": dry_run,
                "alarms": [
                    {
                        "name": c.name,
                        "action": c.action,
                        "changes": [{"field": f, "was": w, "becomes": b} for f, w, b in c.changes],
                        "reason": c.reason,
                    }
                    for c in changes
                ],
            }
        )
        return
    mark = {"create": "+", "update": "~", "unchanged": "=", "skipped": "-"}
    for c in changes:
        verb = (
            c.action if not dry_run or c.action in ("unchanged", "skipped") else f"would {c.action}"
        )
        line = f"{mark[c.action]} {c.name}: {verb}"
        if c.reason:
            line += f" ({c.reason})"
        app.console.print(line, markup=False)
        for field, was, becomes in c.changes:
            app.console.print(f"    {field}: {was} -> {becomes}", markup=False)
    todo = sum(1 for c in changes if c.action in ("create", "update"))
    if not todo:
        app.info("every alarm already matches deployops.yaml; nothing changed")
    elif dry_run:
        app.info(f"{todo} alarm(s) would change; run without --dry-run to apply")
