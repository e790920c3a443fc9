"""``deployops deployments list|show``: the deployment history in the state store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from deployops.cli._common import fmt_time, get_app

# What the history shows: deployments, rollbacks, and the recovery kinds (restores, drills;
# cli/_recovery.recovery_kinds, checked by a test)
HISTORY_KINDS = ("deploy", "rollback", "restore", "drill")

if TYPE_CHECKING:
    from deployops.cli.app import App
    from deployops.store import DeploymentRecord, OperationRecord

group = typer.Typer(
    help=(
        "Deployment history.\n\n"
        "Examples:\n\n"
        "  deployops deployments list\n\n"
        "  deployops deployments list -e production --service web -o json\n\n"
        "  deployops deployments show dep-20261129-174501-7f3a"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="deployments")


# --kind: the operation kinds listed (default: deployments and rollbacks)
_KINDS = {
    "deploy": ("deploy",),
    "rollback": ("rollback",),
    "restore": ("restore",),
    "drill": ("drill",),
    "rotate": ("rotate",),
}


@group.command("list")
def list_(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option("--service", help="Only this service.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")
    ] = 20,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            help="Operations of this kind: deploy, rollback, restore, drill, rotate (secret "
            "rotations) or all (default: all but rotations).",
        ),
    ] = None,
) -> None:
    """List deployments, rollbacks, restores and drills (or other operations with --kind),
    newest first."""
    from deployops.errors import ConfigError

    app = get_app(ctx)
    env = app.env
    if env:
        app.project.environment(env)
    if service:
        app.project.service(service)
    if kind is not None and kind != "all" and kind not in _KINDS:
        raise ConfigError(
            f"unknown operation kind {kind!r}",
            path="--kind",
            hint=f"use one of {', '.join([*_KINDS, 'all'])}",
        )
    if kind is None or kind in HISTORY_KINDS:
        _list_deployments(app, env, service, limit, _KINDS[kind] if kind else HISTORY_KINDS)
        return
    kinds = None if kind == "all" else _KINDS[kind]
    ops = app.store.list_operations(kinds=kinds, environment=env, target=service, limit=limit)
    if app.json:
        app.emit([_op_row_json(op) for op in ops])
        return
    if not ops:
        app.console.print(f"no {kind} operations yet")
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("ID", "ENV", "TARGET", "KIND", "VERSION", "FROM", "STATUS", "PHASE", "STARTED"):
        table.add_column(col, no_wrap=col == "ID")
    for op in ops:
        row = _op_row_json(op)
        table.add_row(
            op.id,
            op.environment,
            op.target,
            op.kind,
            str(row["version"])[:12] or "-",
            str(row["previous_version"])[:12] or "-",
            _status(op.status),
            op.phase or "-",
            fmt_time(op.created_at),
        )
    app.console.print(table)


def _op_row_json(op: OperationRecord) -> dict[str, Any]:
    """One operation of any kind as a list row (never a secret value: versions are ids)."""
    return {
        "id": op.id,
        "kind": op.kind,
        "environment": op.environment,
        "target": op.target,
        "service": op.target,
        "status": op.status,
        "phase": op.phase,
        "owner": op.owner,
        "version": str(op.detail.get("version", "")),
        "previous_version": str(op.detail.get("previous_version", "")),
        "reverts": op.reverts,
        "error": op.error,
        "created_at": op.created_at.isoformat(),
        "updated_at": op.updated_at.isoformat(),
        "finished_at": op.finished_at.isoformat() if op.finished_at else None,
    }


def _list_deployments(
    app: App, env: str | None, service: str | None, limit: int, kinds: tuple[str, ...] | None
) -> None:
    rows = app.store.list_deployments(
        environment=env, service=service, limit=limit, kinds=kinds or HISTORY_KINDS
    )
    watches = _watches(app, rows)
    if app.json:
        from deployops.store.queries import deployment_json

        app.emit([{**deployment_json(r), "watch": watches[r.id]} for r in rows])
        return
    if not rows:
        app.console.print("no deployments yet: run `deployops deploy --version X.Y.Z`")
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in (
        *("ID", "ENV", "SERVICE", "KIND", "VERSION", "FROM", "STATUS", "PHASE", "STARTED"),
        "WATCH",
    ):
        table.add_column(col, no_wrap=col == "ID")  # ids are copied into `show`: never cut
    for r in rows:
        table.add_row(
            r.id,
            r.environment,
            r.service,
            r.kind,
            r.version or "-",
            r.previous_version or "-",
            _status(r.status),
            r.phase or "-",
            fmt_time(r.created_at),
            _watch_cell(watches[r.id]),
        )
    app.console.print(table)


def _watches(app: App, rows: list[DeploymentRecord]) -> dict[str, dict[str, object]]:
    """The watch after the switch of each row (the rollback rules after the window)."""
    from deployops.clock import SystemClock
    from deployops.store.queries import watch_view

    now = SystemClock().now()
    out: dict[str, dict[str, object]] = {}
    for r in rows:
        op = app.store.get_operation(r.id)
        out[r.id] = watch_view(op, now=now) if op is not None else {"state": "none"}
    return out


def _watch_cell(view: dict[str, object]) -> str:
    """A short column: until when it is watched, or how the watch ended."""
    from deployops.store.queries import parse_time

    state = str(view.get("state", "none"))
    if state == "watching":
        until = parse_time(view.get("until"))
        return f"[cyan]until {fmt_time(until)}[/cyan]" if until else "[cyan]watching[/cyan]"
    if state == "rolling_back":
        return "[yellow]rolling back[/yellow]"
    if state == "rolled_back":
        return "[yellow]rolled back[/yellow]"
    if state in ("none", "off"):
        return "-"
    if state in ("rollback_failed", "blocked"):
        return f"[red]{state.replace('_', ' ')}[/red]"
    return state


def _status(status: str) -> str:
    colour = {
        "succeeded": "green",
        "failed": "red",
        "rolled_back": "yellow",
        "running": "cyan",
        "refused": "magenta",
    }.get(status, "white")
    return f"[{colour}]{status}[/{colour}]"


@group.command("show")
def show(
    ctx: typer.Context,
    deployment_id: Annotated[str, typer.Argument(help="A deployment id (or a unique prefix).")],
    follow: Annotated[
        bool,
        typer.Option(
            "-f",
            "--follow",
            help="Then print its log as it is written until it ends; the exit code is its "
            "outcome (0 succeeded, 1 failed, 3 rolled back).",
        ),
    ] = False,
) -> None:
    """Show one deployment: its steps with timestamps, events and decisions, and whether it
    is still under watch after the switch (until when, or how the watch ended).

    Examples:

      deployops deployments show dep-20261129-174501-7f3a

      deployops deployments show dep-20261129-174501-7f3a --follow

      deployops -o json deployments show dep-2026 -f
    """
    app = get_app(ctx)
    rec = app.store.find_deployment(deployment_id, kinds=HISTORY_KINDS)
    if rec is None:
        op = app.store.find_operation(deployment_id)
        if op is not None:  # another kind of operation (a secret rotation)
            _show_operation(app, op)
            return
    rec = app.store.require_deployment(deployment_id, kinds=HISTORY_KINDS)
    # the newest event the document below includes (read first: none can slip between them)
    shown = max((e.id for e in app.store.events(deployment_id=rec.id)), default=0)
    _show(app, rec)
    if follow:
        _follow(app, rec.id, after=shown)


# A followed deployment's outcome as the exit code a pipeline can wait on.
_FOLLOW_EXIT = {"succeeded": 0, "rolled_back": 3}


def _follow(app: App, deployment_id: str, *, after: int, poll_s: float = 0.5) -> None:
    """Print each event of the deployment as it is stored, until the deployment has ended
    and everything it wrote is printed (the log a person watches during a deploy)."""
    from deployops.clock import SystemClock
    from deployops.store.queries import event_json

    clock = SystemClock()
    # JSON: the document above already holds the events up to ``after``; text: the log from
    # its start.
    seen = after
    if not app.json:
        seen = 0
        app.console.print("  its log (Ctrl-C stops watching, not the deployment):")
    while True:
        rec = app.store.require_deployment(deployment_id, kinds=HISTORY_KINDS)
        for e in app.store.events(deployment_id=deployment_id, since_id=seen):
            seen = e.id
            if app.json:
                app.emit(event_json(e))
            else:
                colour = {"error": "red", "warning": "yellow"}.get(e.level, "white")
                app.console.print(
                    f"  {fmt_time(e.ts)} [{colour}]{e.level:<7}[/{colour}] {e.message}",
                    markup=True,
                    highlight=False,
                )
        if rec.status != "running":
            if not app.json:
                app.console.print(f"  ended: {_status(rec.status)}")
            code = _FOLLOW_EXIT.get(rec.status, 1)
            if code:
                raise typer.Exit(code)
            return
        clock.sleep(poll_s)


def _show(app: App, rec: DeploymentRecord) -> None:
    steps = app.store.steps_for(rec.id)
    events = app.store.events(deployment_id=rec.id)
    decisions = app.store.decisions(deployment_id=rec.id)
    # CHK-3: the completion report kept with the deployment (the newest of its rewrites)
    reports = [e.data for e in events if e.kind == "checklist.report"][-1:]
    if app.json:
        from deployops.clock import SystemClock
        from deployops.store.queries import deployment_detail

        detail = deployment_detail(app.store, rec.id, kinds=HISTORY_KINDS, now=SystemClock().now())
        app.emit({**detail, "reports": reports})
        return
    c = app.console
    c.print(f"[bold]{rec.id}[/bold]  {rec.kind} of {rec.service} to {rec.environment}")
    if rec.version:
        c.print(f"  version   {rec.previous_version or '-'} -> {rec.version}  ({rec.strategy})")
    else:
        c.print(f"  plan      {rec.strategy}")
    c.print(f"  status    {_status(rec.status)}   phase: {rec.phase or '-'}")
    if rec.reverts:
        c.print(f"  reverts   {rec.reverts}")
    c.print(f"  started   {fmt_time(rec.created_at)}   finished: {fmt_time(rec.finished_at)}")
    if rec.task_definition:
        c.print(f"  task def  {rec.task_definition}   target group: {rec.target_group or '-'}")
    if rec.error:
        c.print(f"  [red]error[/red]     {rec.error}")
    watch = _watches(app, [rec])[rec.id]
    if watch.get("state") not in (None, "none"):
        c.print(f"  watch     {watch.get('summary', '')}", markup=False, highlight=False)
    if steps:
        from rich.table import Table

        table = Table(box=None, header_style="bold", title="steps", title_justify="left")
        for col in ("#", "PHASE", "STEP", "STATUS", "STARTED", "TOOK", "NOTE"):
            table.add_column(col)
        for s in steps:
            took = (
                f"{(s.finished_at - s.started_at).total_seconds():.2f}s" if s.finished_at else "-"
            )
            note = s.error or ", ".join(f"{k}={v}" for k, v in list(s.result.items())[:3])
            table.add_row(
                str(s.seq),
                s.phase,
                s.name,
                _status(s.status),
                fmt_time(s.started_at),
                took,
                note[:80],
            )
        c.print(table)
    for d in decisions:
        c.print(f"  decision  {fmt_time(d.ts)} {d.rule}: {d.verdict} -> {d.action}")
    from deployops.store.queries import judgement_lines, measurements_summary

    for j in app.store.judgements(deployment_id=rec.id):
        first, *rest = judgement_lines(j)
        c.print(f"  judgement {fmt_time(j.ts)} {first}", markup=False, highlight=False)
        for line in rest:
            c.print(f"            {line}", markup=False, highlight=False)
    for m in measurements_summary(app.store.measurements(deployment_id=rec.id)):
        rate = "-" if m["error_rate"] is None else f"{m['error_rate']:g} %"
        p99 = "-" if m["max_p99_ms"] is None else f"{m['max_p99_ms']:.4g} ms"
        c.print(
            f"  measured  {m['colour']} ({m['role']}, {m['scope']}): {m['windows']} windows, "
            f"{m['requests']} requests, {m['errors']} errors ({rate}), worst P99 {p99}",
            highlight=False,
        )
    for r in reports:
        state = "final" if r.get("final") else "open"
        c.print(f"  report    {r.get('markdown')} ({state}; HTML: {r.get('html')})")


def _show_operation(app: App, op: OperationRecord) -> None:
    """An operation that is not a deployment: its steps (revert steps included) and events."""
    from deployops.store.queries import event_json, step_json

    steps = app.store.steps_for(op.id)
    events = app.store.events(deployment_id=op.id)
    if app.json:
        app.emit(
            {
                **_op_row_json(op),
                "steps": [step_json(s) for s in steps],
                "events": [event_json(e) for e in events],
            }
        )
        return
    c = app.console
    c.print(f"[bold]{op.id}[/bold]  {op.kind} of {op.target} in {op.environment}")
    c.print(f"  status    {_status(op.status)}   phase: {op.phase or '-'}")
    c.print(f"  started   {fmt_time(op.created_at)}   finished: {fmt_time(op.finished_at)}")
    if op.error:
        c.print(f"  [red]error[/red]     {op.error}")
    for s in steps:
        took = f"{(s.finished_at - s.started_at).total_seconds():.2f}s" if s.finished_at else "-"
        c.print(f"  {s.seq:>2} {s.phase:<8} {s.name:<18} {_status(s.status)} {took} {s.error}")
