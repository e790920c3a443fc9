"""``deployops lock list|release``: the one-deploy-at-a-time locks."""

from __future__ import annotations

from typing import Annotated

import typer

from deployops.cli._common import fmt_time, get_app

group = typer.Typer(
    help=(
        "Deploy locks: one deploy at a time per environment and service.\n\n"
        "Examples:\n\n"
        "  deployops lock list\n\n"
        "  deployops lock release production/web --force --reason 'deploy host crashed'"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="lock")


@group.command("list")
def list_(ctx: typer.Context) -> None:
    """Show held locks with owner, reason and age (a stale lock is visible here)."""
    app = get_app(ctx)
    from deployops.clock import SystemClock

    now = SystemClock().now()
    locks = app.store.list_locks()
    if app.json:
        app.emit(
            [
                {
                    "key": lk.key,
                    "owner": lk.owner,
                    "reason": lk.reason,
                    "deployment_id": lk.deployment_id,
                    "acquired_at": lk.acquired_at.isoformat(),
                    "age_seconds": round((now - lk.acquired_at).total_seconds(), 1),
                }
                for lk in locks
            ]
        )
        return
    if not locks:
        app.console.print("no locks held")
        return
    for lk in locks:
        age = (now - lk.acquired_at).total_seconds()
        app.console.print(
            f"{lk.key}  held by {lk.owner} since {fmt_time(lk.acquired_at)} ({age:.0f}s): "
            f"{lk.reason}"
        )


@group.command("release")
def release(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="ENV/SERVICE, as `lock list` shows it.")],
    force: Annotated[bool, typer.Option("--force", help="Required: breaking a lock.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the audit log.")] = "",
) -> None:
    """Break a lock someone else holds (audited)."""
    import getpass
    import socket

    from deployops.clock import SystemClock
    from deployops.errors import ConfigError

    app = get_app(ctx)
    if not force or not reason.strip():
        raise ConfigError(
            "breaking a lock needs --force and --reason",
            path="lock release",
            hint=f"deployops lock release {key} --force --reason 'why it is stale'",
        )
    actor = f"{getpass.getuser()}@{socket.gethostname()}"
    held = app.store.force_release_lock(key, actor=actor, reason=reason, now=SystemClock().now())
    if app.json:
        app.emit({"released": key, "was_held_by": held.owner})
    else:
        app.console.print(f"released {key} (was held by {held.owner}: {held.reason})")
