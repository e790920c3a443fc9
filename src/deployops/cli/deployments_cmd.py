"""``deployops deployments list|show``: the deployment history in the state store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from deployops.cli._common import fmt_time, get_app

# What the history shows: deployments, rollbacks, and the recovery kinds (restores, drills;
# cli/_recovery.recovery_kinds, checked by a test)
HISTORY_KINDS = ("deploy", "rollback", "restore", "drill")

if TYPE_CHECKING:
    from deployops.cli.app import App
    from deployops.store import DeploymentRecord

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


@group.command("list")
def list_(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option("--service", help="Only this service.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")
    ] = 20,
) -> None:
    """List deployments, rollbacks, restores and drills, newest first."""
    app = get_app(ctx)
    env = app.env
    if env:
        app.project.environment(env)
    if service:
        app.project.service(service)
    rows = app.store.list_deployments(
        environment=env, service=service, limit=limit, kinds=HISTORY_KINDS
    )
    if app.json:
        from deployops.store.queries import deployment_json

        app.emit([deployment_json(r) for r in rows])
        return
    if not rows:
        app.console.print("no deployments yet: run `deployops deploy --version X.Y.Z`")
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("ID", "ENV", "SERVICE", "KIND", "VERSION", "FROM", "STATUS", "PHASE", "STARTED"):
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
        )
    app.console.print(table)


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
    """Show one deployment: its steps with timestamps, events and decisions.

    Examples:

      deployops deployments show dep-20261129-174501-7f3a

      deployops deployments show dep-20261129-174501-7f3a --follow

      deployops -o json deployments show dep-2026 -f
    """
    app = get_app(ctx)
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
        from deployops.store.queries import deployment_detail

        detail = deployment_detail(app.store, rec.id, kinds=HISTORY_KINDS)
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
