"""``deployops rollback DEPLOYMENT_ID [--dry-run]`` (RB-3)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from deployops.cli._common import get_app

if TYPE_CHECKING:
    from deployops.cli.app import App
    from deployops.engine.planning.rollback import RollbackPlan

ROLLBACK_HELP = """Roll back a deployment to the version it replaced (RB-3).

Checks first, and prints them: the version to return to, database compatibility (an
irreversible migration blocks unless --force --reason), configuration changes that revert with
it, and the user impact. While the previous colour still runs this is an instant listener flip;
otherwise the previous task definition is deployed again, blue-green.

Exit codes: 3 rolled back, 0 dry run printed, 1 failed, 2 refused (nothing changed), 4 locked.

Examples:

  deployops rollback dep-20261129-174501-7f3a --dry-run

  deployops rollback dep-20261129-174501-7f3a

  deployops rollback dep-20261129-174501-7f3a --force --reason 'schema is backward compatible'
"""


def register(app: typer.Typer) -> None:
    app.command("rollback", help=ROLLBACK_HELP)(rollback)


def rollback(
    ctx: typer.Context,
    deployment_id: Annotated[str, typer.Argument(help="The deployment to revert.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print checks and plan only.")] = (
        False
    ),
    force: Annotated[bool, typer.Option("--force", help="Override a blocking check.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (required with --force).")] = "",
) -> None:
    from deployops.cli.deploy_cmd import reporter_for
    from deployops.engine.planning.rollback import plan_rollback, run_rollback
    from deployops.errors import RolledBackError
    from deployops.wiring import build_deployer, whoami

    app = get_app(ctx)
    rec = app.store.require_deployment(deployment_id)
    env = app.env or rec.environment
    deployer = build_deployer(app.project, env, store=app.store, reporter=reporter_for(app))
    rb = plan_rollback(deployer, rec.id)
    if app.json:
        if dry_run:
            app.emit({"dry_run": True, **rb.to_json()})
            return
    else:
        _print_plan(app, rb, env)
        if dry_run:
            app.console.print("dry run: nothing was changed")
            return
    done = run_rollback(deployer, rb, owner=whoami(), force=force, reason=reason)
    if app.json:
        app.emit({"result": done.to_json()})
    raise RolledBackError(
        f"rolled back {rec.service} to {rb.to_version} in {env} ({done.id}, reverts {rec.id})"
    )


def _print_plan(app: App, rb: RollbackPlan, env: str) -> None:
    """The guide's checks (RB-3) and the steps, for people."""
    rec = rb.deployment
    c = app.console
    c.print(
        f"[bold]rollback[/bold] of {rec.id}: {rec.service} {rec.version} -> "
        f"{rb.to_version} in {env} ({rb.mode})"
    )
    colour = {"ok": "green", "warn": "yellow", "block": "red"}
    for check in rb.checks:
        col = colour[check.status]
        c.print(f"  [{col}]{check.status:5}[/{col}] {check.name}: {check.detail}")
    for i, step in enumerate(rb.plan.steps, 1):
        c.print(f"  {i:2}. {step.describe()}")
