"""``deployops serve``: the long-running controller (alarms, autoscaler, deferred jobs) with
``/healthz`` and Prometheus ``/metrics``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from deployops.cli._common import get_app

if TYPE_CHECKING:
    from deployops.clock import Clock
    from deployops.config.project import ProjectConfig
    from deployops.drivers import Platform
    from deployops.engine.controller import Controller
    from deployops.store import StateStore

__all__ = ["build_controller", "register"]


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def build_controller(
    project: ProjectConfig,
    environment: str,
    *,
    store: StateStore,
    clock: Clock,
    platform: Platform,
    worker: str,
    tick_s: float = 1.0,
    job_interval_s: float = 5.0,
) -> Controller:
    """The controller of one environment, wired from ``deployops.yaml``."""
    from deployops.config.monitoring import alarm_definitions, scaling_policy
    from deployops.domain.model import MetricName
    from deployops.engine.alarms import AlarmEvaluator, RoutedMetrics
    from deployops.engine.autoscaler import Autoscaler
    from deployops.engine.controller import Controller
    from deployops.engine.events import null_reporter
    from deployops.ports import Metrics
    from deployops.wiring import build_deployer, build_notify, owner_alive

    services = list(project.services)
    env = project.environment(environment)
    metrics: Metrics = platform.metrics
    if env.platform == "local" and env.local.database_dsn:
        from deployops.drivers.local.pgconn import PostgresConnectionsMetrics

        metrics = RoutedMetrics(
            default=platform.metrics,
            routes={
                MetricName.DB_CONNECTIONS: PostgresConnectionsMetrics(
                    dsn=env.local.database_dsn, clock=clock
                )
            },
        )
    auto = project.autoscaling
    autoscaler = None
    if auto.enabled:
        autoscaler = Autoscaler(
            policy=scaling_policy(auto),
            environment=environment,
            services=services,
            compute=platform.compute,
            traffic=platform.traffic,
            metrics=metrics,
            store=store,
            clock=clock,
            owner=worker,
            alarm_step=auto.alarm_scale_out_step,
        )
    evaluator = AlarmEvaluator(
        alarms=alarm_definitions(project.alarms),
        environment=environment,
        services=services,
        metrics=metrics,
        traffic=platform.traffic,
        store=store,
        clock=clock,
        notify=build_notify(project, environment, store, clock),
        scale_out=autoscaler.scale_out_for_alarm if autoscaler is not None else None,
    )

    def resume(deployment_id: str) -> object:
        deployer = build_deployer(
            project,
            environment,
            store=store,
            reporter=null_reporter,
            clock=clock,
            platform=platform,
        )
        return deployer.resume(deployment_id, owner=worker, owner_alive=owner_alive)

    return Controller(
        store=store,
        clock=clock,
        environment=environment,
        traffic=platform.traffic,
        compute=platform.compute,
        worker=worker,
        evaluator=evaluator,
        autoscaler=autoscaler,
        resume=resume,
        owner_alive=owner_alive,
        tick_s=tick_s,
        job_interval_s=job_interval_s,
    )


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address for /healthz and /metrics.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="Port for /healthz and /metrics.")] = 8089,
    tick: Annotated[float, typer.Option("--tick", help="Seconds between scheduler ticks.")] = 1.0,
) -> None:
    """Run the controller: alarm evaluation every period, the autoscaler, deferred jobs
    (old target groups 24 h after a deploy); resumes interrupted deployments at start.

    Example: deployops serve -e production --port 8089
    """
    import threading

    import uvicorn

    from deployops.clock import SystemClock
    from deployops.drivers import build_platform
    from deployops.web import create_app
    from deployops.wiring import whoami

    app = get_app(ctx)
    env = app.environment_name()
    clock = SystemClock()
    store = app.store
    platform = build_platform(app.project, env, clock=clock, store=store)
    controller = build_controller(
        app.project, env, store=store, clock=clock, platform=platform, worker=whoami(), tick_s=tick
    )
    stop = threading.Event()
    loop = threading.Thread(target=controller.run, args=(stop,), name="controller", daemon=True)
    app.info(f"controller for {env} on http://{host}:{port} (/healthz, /metrics)")
    controller.start()
    loop.start()
    try:
        web = create_app(
            controller=controller, store=store, clock=clock, stall_after_s=max(30.0, 10 * tick)
        )
        uvicorn.run(web, host=host, port=port, log_level="warning")
    finally:
        stop.set()
        loop.join(timeout=max(5.0, 2 * tick))
        platform.close()
