"""``deployops serve``: the long-running controller (alarms, autoscaler, deferred jobs) with
``/healthz``, Prometheus ``/metrics``, the JSON API and the dashboard; and
``deployops tokens create`` for the API's bearer tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from deployops.cli._common import get_app

if TYPE_CHECKING:
    from deployops.clock import Clock
    from deployops.config.project import ProjectConfig
    from deployops.engine.deploy import Deployer
    from deployops.engine.events import Reporter
    from deployops.store import StateStore

__all__ = ["PlatformEngine", "register"]

tokens_group = typer.Typer(
    help=(
        "Bearer tokens of the API and the dashboard (roles viewer, deployer, admin).\n\n"
        "Examples:\n\n"
        "  deployops tokens create --name ci --role deployer\n\n"
        "  deployops tokens create --name alice --role viewer --expires-in-days 30 -o json"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(tokens_group, name="tokens")


class PlatformEngine:
    """Each operation gets its own platform connections and deployer, closed when it ends."""

    def __init__(
        self, project: ProjectConfig, environment: str, *, store: StateStore, clock: Clock
    ) -> None:
        self.project = project
        self.environment = environment
        self.store = store
        self.clock = clock

    def deployer(self, reporter: Reporter) -> AbstractContextManager[Deployer]:
        return self._deployer(reporter)

    @contextmanager
    def _deployer(self, reporter: Reporter) -> Iterator[Deployer]:
        from deployops.drivers import build_platform
        from deployops.wiring import build_deployer

        platform = build_platform(
            self.project, self.environment, clock=self.clock, store=self.store
        )
        try:
            yield build_deployer(
                self.project,
                self.environment,
                store=self.store,
                reporter=reporter,
                clock=self.clock,
                platform=platform,
            )
        finally:
            platform.close()


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8089,
    tick: Annotated[float, typer.Option("--tick", help="Seconds between scheduler ticks.")] = 1.0,
    tokens: Annotated[
        Path | None,
        typer.Option(
            "--tokens",
            help="Token file of the API (default: .deployops/api-tokens.json).",
        ),
    ] = None,
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
    (old target groups 24 h after a deploy); resumes interrupted deployments at start. Serves
    the dashboard and the JSON API (OpenAPI at /api/openapi.json), /healthz and /metrics.

    Several controllers may share one PostgreSQL state store for availability: one acts, the
    others stand by and take over when it stops or dies.

    Example: deployops serve -e production --port 8089
    """
    import signal
    import threading

    from deployops.clock import SystemClock
    from deployops.drivers import build_platform
    from deployops.web import create_app, run_server
    from deployops.web.auth import TokenFile, default_token_path
    from deployops.wiring import build_controller, whoami

    app = get_app(ctx)
    env = app.environment_name()
    clock = SystemClock()
    store = app.store
    token_path = tokens or default_token_path(app.project.state_dir)
    token_file = TokenFile.load(token_path)
    platform = build_platform(app.project, env, clock=clock, store=store)
    from deployops.cli._recovery import build_dr_schedule

    controller = build_controller(
        app.project,
        env,
        store=store,
        clock=clock,
        platform=platform,
        worker=whoami(),
        tick_s=tick,
        lease_ttl_s=lease_ttl,
        loops=build_dr_schedule(app, env, clock).loops(),
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
    app.info(f"dashboard: http://{host}:{port}/  API: http://{host}:{port}/api/openapi.json")
    if not token_file.entries:
        app.info(
            f"no API tokens in {token_path}: create one with "
            "`deployops tokens create --name NAME --role viewer`"
        )
    controller.start()
    loop.start()
    try:
        web = create_app(
            controller=controller,
            store=store,
            clock=clock,
            stall_after_s=max(30.0, 10 * tick),
            project=app.project,
            environment=env,
            tokens=token_file,
            engine=PlatformEngine(app.project, env, store=store, clock=clock),
        )
        run_server(web, host=host, port=port)
    finally:
        stop.set()
        loop.join(timeout=max(5.0, 2 * tick))
        platform.close()


def _exit_on_sigterm(signum: int, frame: object) -> None:  # noqa: ARG001 - signal handler
    raise SystemExit(0)


@tokens_group.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Who or what uses the token.")],
    role: Annotated[str, typer.Option("--role", help="viewer, deployer or admin.")] = "viewer",
    expires_in_days: Annotated[
        float | None, typer.Option("--expires-in-days", min=0.0, help="Expire after N days.")
    ] = None,
    tokens: Annotated[
        Path | None,
        typer.Option("--tokens", help="Token file (default: .deployops/api-tokens.json)."),
    ] = None,
) -> None:
    """Create a token (or replace the one of that name) and print it once: only its hash is
    stored. A running `deployops serve` reads the file at start."""
    from deployops.clock import SystemClock
    from deployops.domain.access import Role
    from deployops.errors import ConfigError
    from deployops.web.auth import create_token, default_token_path

    app = get_app(ctx)
    try:
        parsed = Role.parse(role)
    except ValueError as exc:
        raise ConfigError(str(exc), path="--role") from None
    path = tokens or default_token_path(app.project.state_dir)
    expires = (
        SystemClock().now() + timedelta(days=expires_in_days)
        if expires_in_days is not None
        else None
    )
    token, entry = create_token(path, name=name, role=parsed, expires=expires)
    if app.json:
        app.emit({"name": entry.name, "role": entry.role.value, "token": token, "file": str(path)})
        return
    app.console.print(f"token for {entry.name} ({entry.role.value}), stored as a hash in {path}:")
    app.console.print(token, highlight=False, soft_wrap=True)
    app.console.print("it is not shown again; restart `deployops serve` to load it")
