"""``deployops rollback DEPLOYMENT_ID [--dry-run]`` (RB-3) and ``deployops health`` (DEP-5)."""

from __future__ import annotations

from typing import Annotated

import typer

from deployops.cli._common import get_app

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
    app.command(
        "health",
        help=(
            "Health of a service: listener, target group, containers, and a request through "
            "the production listener. Exit 0 healthy, 1 not.\n\n"
            "Examples:\n\n  deployops health -e staging --service web\n\n"
            "  deployops health -e staging -o json"
        ),
    )(health)


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
    from deployops.engine.rollback import plan_rollback, run_rollback
    from deployops.errors import RolledBackError
    from deployops.wiring import build_deployer, whoami

    app = get_app(ctx)
    rec = app.store.require_deployment(deployment_id)
    env = app.env or rec.environment
    deployer = build_deployer(app.project, env, store=app.store, reporter=reporter_for(app))
    rb = plan_rollback(deployer, rec.id)
    if dry_run or not app.json:
        if app.json:
            app.emit({"dry_run": True, **rb.to_json()})
        else:
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
        if dry_run:
            if not app.json:
                app.console.print("dry run: nothing was changed")
            return
    done = run_rollback(deployer, rb, owner=whoami(), force=force, reason=reason)
    if app.json:
        app.emit({"result": done.to_json()})
    raise RolledBackError(
        f"rolled back {rec.service} to {rb.to_version} in {env} ({done.id}, reverts {rec.id})"
    )


def health(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option("--service", envvar="SERVICE")] = None,
) -> None:
    from deployops.clock import SystemClock
    from deployops.drivers import build_platform

    app = get_app(ctx)
    env = app.environment_name()
    svc = app.service_name(service)
    cfg = app.project.service(svc)
    plat = build_platform(app.project, env, clock=SystemClock(), store=app.store)
    listener = plat.traffic.describe_listener(f"{svc}-prod")
    tg = listener.target_group
    state = plat.compute.describe_service(tg)
    group = plat.traffic.describe_target_group(tg)
    url = f"http://{listener.host}:{listener.port}{cfg.health_check.path}"
    probe = plat.prober.get(url, timeout_s=5.0)
    healthy = (
        state is not None
        and state.desired > 0
        and state.healthy >= state.desired
        and probe.status == 200
    )
    report = {
        "service": svc,
        "environment": env,
        "listener": listener.name,
        "target_group": tg,
        "desired": state.desired if state else 0,
        "running": state.running if state else 0,
        "healthy": state.healthy if state else 0,
        "healthy_in_target_group": group.healthy_count if group else 0,
        "probe": {"url": url, "status": probe.status, "ms": round(probe.elapsed_ms, 1)},
        "ok": healthy,
    }
    if app.json:
        app.emit(report)
    else:
        mark = "[green]healthy[/green]" if healthy else "[red]UNHEALTHY[/red]"
        app.console.print(
            f"{svc} in {env}: {mark}  {listener.name} -> {tg}; containers "
            f"{report['healthy']}/{report['desired']} healthy; {url} answered "
            f"{probe.status or probe.error}"
        )
    if not healthy:
        raise typer.Exit(1)
