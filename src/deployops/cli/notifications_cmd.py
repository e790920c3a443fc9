"""``deployops notifications list``: notices not delivered yet (a receiver down or hanging),
kept in the state store and retried by ``deployops serve``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from deployops.cli._common import fmt_time, get_app

group = typer.Typer(
    help=(
        "Notifications that could not be delivered while their command ran: kept in the state "
        "store and retried by `deployops serve` until delivered or expired.\n\n"
        "Examples:\n\n"
        "  deployops notifications list -e production\n\n"
        "  deployops notifications list -e production --all -o json"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="notifications")


@group.command("list")
def list_(
    ctx: typer.Context,
    all_: Annotated[
        bool, typer.Option("--all", help="Also those delivered later (default: pending, expired).")
    ] = False,
    limit: Annotated[int, typer.Option("-n", "--limit", min=1, help="At most this many.")] = 50,
) -> None:
    """Show undelivered notices: channel, what they say, attempts, next try, last error."""
    app = get_app(ctx)
    env = app.environment_name()
    statuses = None if all_ else ["pending", "expired"]
    rows = app.store.pending_notices(environment=env, status=statuses, limit=limit)
    if app.json:
        app.emit([_row(r) for r in rows])
    elif not rows:
        app.console.print(f"no undelivered notifications in {env}")
    else:
        for r in rows:
            when = (
                f"next try {fmt_time(r.next_attempt_at)}"
                if r.status == "pending"
                else f"{r.status} {fmt_time(r.finished_at)}"
            )
            app.console.print(
                f"#{r.id} {r.status:<9} {r.channel}: {r.action} {r.title!r} "
                f"(since {fmt_time(r.created_at)}, {r.attempts} attempts, {when})",
                highlight=False,
            )
            if r.last_error and r.status != "delivered":
                app.console.print(f"    last error: {r.last_error}", highlight=False)
        pending = sum(1 for r in rows if r.status == "pending")
        if pending:
            app.console.print(
                f"{pending} pending: `deployops serve -e {env}` retries them", highlight=False
            )


def _row(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "environment": r.environment,
        "channel": r.channel,
        "action": r.action,
        "title": r.title,
        "status": r.status,
        "attempts": r.attempts,
        "next_attempt_at": r.next_attempt_at.isoformat() if r.status == "pending" else None,
        "last_error": r.last_error,
        "created_at": r.created_at.isoformat(),
        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
        "notice": {
            k: r.notice.get(k) for k in ("severity", "kind", "text", "deployment_id", "service")
        },
    }
