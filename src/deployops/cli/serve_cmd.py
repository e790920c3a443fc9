"""``deployops serve``: the long-running controller (alarms, autoscaler, deferred jobs) with
``/healthz`` and Prometheus ``/metrics``."""

from __future__ import annotations

from typing import Annotated

import typer

from deployops.cli._common import get_app

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address for /healthz and /metrics.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="Port for /healthz and /metrics.")] = 8089,
    tick: Annotated[float, typer.Option("--tick", help="Seconds between scheduler ticks.")] = 1.0,
    lease_ttl: Annotated[
        float,
        typer.Option(
            "--lease-ttl",
            min=1.0,
            help="Controllers sharing one state store elect one to act; a standby takes over "
            "this many seconds after the acting one dies.",
        ),
    ] = 15.0,
) -> None:
    """Run the controller: alarm evaluation every period, the autoscaler, deferred jobs
    (old target groups 24 h after a deploy); resumes interrupted deployments at start.

    Several controllers may share one PostgreSQL state store for availability: one acts, the
    others stand by and take over when it stops or dies.

    Example: deployops serve -e production --port 8089
    """
    import signal
    import threading

    from deployops.clock import SystemClock
    from deployops.drivers import build_platform
    from deployops.web import create_app, run_server
    from deployops.wiring import build_controller, whoami

    app = get_app(ctx)
    env = app.environment_name()
    clock = SystemClock()
    store = app.store
    platform = build_platform(app.project, env, clock=clock, store=store)
    controller = build_controller(
        app.project,
        env,
        store=store,
        clock=clock,
        platform=platform,
        worker=whoami(),
        tick_s=tick,
        lease_ttl_s=lease_ttl,
    )
    stop = threading.Event()
    if controller.lease is not None:
        # Renewed apart from the loop, so long work (resuming a deployment) keeps the lease.
        threading.Thread(
            target=controller.lease.keep, args=(stop,), name="lease", daemon=True
        ).start()
    loop = threading.Thread(target=controller.run, args=(stop,), name="controller", daemon=True)
    # SIGTERM is the normal way to stop a service. uvicorn shuts down on it and then re-raises
    # it under the handler it found; with the default one the process would die right there,
    # skipping the `finally` below (the controller loop would be cut mid-job). This handler
    # turns it into a clean exit, also when it arrives while resuming deployments at start.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    app.info(f"controller for {env} on http://{host}:{port} (/healthz, /metrics)")
    controller.start()
    loop.start()
    try:
        web = create_app(
            controller=controller, store=store, clock=clock, stall_after_s=max(30.0, 10 * tick)
        )
        run_server(web, host=host, port=port)
    finally:
        stop.set()
        loop.join(timeout=max(5.0, 2 * tick))
        platform.close()


def _exit_on_sigterm(signum: int, frame: object) -> None:  # noqa: ARG001 - signal handler
    raise SystemExit(0)
