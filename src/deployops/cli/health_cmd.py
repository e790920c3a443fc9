"""``deployops health``: is a service serving (DEP-5, ``scripts/health-check.sh``)."""

from __future__ import annotations

from typing import Annotated

import typer

from deployops.cli._common import get_app


def register(app: typer.Typer) -> None:
    app.command(
        "health",
        help=(
            "Health of a service: listener, target group, containers, and a request through "
            "the production listener. Exit 0 healthy, 1 not.\n\n"
            "Examples:\n\n  deployops health -e staging --service web\n\n"
            "  deployops health -e staging -o json"
        ),
    )(health)


def health(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option("--service", envvar="SERVICE")] = None,
) -> None:
    from deployops.clock import SystemClock
    from deployops.domain.names import prod_listener
    from deployops.drivers import build_platform

    app = get_app(ctx)
    env = app.environment_name()
    svc = app.service_name(service)
    cfg = app.project.service(svc)
    plat = build_platform(app.project, env, clock=SystemClock(), store=app.store)
    listener = plat.traffic.describe_listener(prod_listener(svc))
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
        # notices a command could not deliver, waiting for `deployops serve` to retry them
        "undelivered_notifications": app.store.notice_counts(environment=env).get("pending", 0),
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
        if report["undelivered_notifications"]:
            app.console.print(
                f"{report['undelivered_notifications']} notification(s) not delivered yet: "
                "`deployops notifications list` shows them; `deployops serve` retries them"
            )
    if not healthy:
        raise typer.Exit(1)
