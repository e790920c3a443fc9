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
        "  deployops alarms history HighErrorRate"
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
