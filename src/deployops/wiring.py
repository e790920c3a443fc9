"""The composition root: builds platforms, the engine and notifiers from ``deployops.yaml``.

Only front ends (``cli``, ``web``, the controller) call this; the engine itself sees ports.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from deployops.clock import Clock, SystemClock

if TYPE_CHECKING:
    from deployops.config.project import ProjectConfig
    from deployops.drivers import Platform
    from deployops.engine.controller import Controller
    from deployops.engine.deploy import Deployer
    from deployops.engine.events import Notify, Reporter
    from deployops.engine.observe.checklist_gate import DuringGate
    from deployops.engine.observe.health import Observer
    from deployops.engine.operation import HandlerTable
    from deployops.engine.rotation import Rotator
    from deployops.engine.runner import Runner
    from deployops.notify.router import Delivery, NotificationRouter
    from deployops.ports import Compute, CredentialTarget, Metrics
    from deployops.ports.recovery import DatabaseEndpoints
    from deployops.store import StateStore

__all__ = [
    "build_controller",
    "build_deployer",
    "build_notify",
    "build_rotator",
    "build_runner",
    "close_routers",
    "database_endpoints",
    "owner_alive",
    "whoami",
]


def whoami() -> str:
    """``user@host:pid``: who holds a lock, so a stale one can be recognised."""
    return f"{getpass.getuser()}@{socket.gethostname()}:{os.getpid()}"


CRASH_AT_VARIABLE = "DEPLOYOPS_TEST_CRASH_AT"


def crash_point_from_environment() -> Callable[[str, int, str], None] | None:
    """The reliability suite's fault point: with ``DEPLOYOPS_TEST_CRASH_AT=KIND:SEQ:WHERE``
    (e.g. ``deploy:4:before-act``; WHERE is before-intent, before-act or before-outcome) this
    process kills itself with SIGKILL at that point of that step, as a power cut would. Unset
    (always, outside the tests) the runner has no fault point."""
    spec = os.environ.get(CRASH_AT_VARIABLE, "")
    if not spec:
        return None

    def crash(kind: str, seq: int, where: str) -> None:
        if f"{kind}:{seq}:{where}" == spec:
            os.kill(os.getpid(), signal.SIGKILL)

    return crash


def owner_alive(owner: str) -> bool:
    """Whether the process named by a lock owner still runs (unknown hosts count as alive)."""
    host_pid = owner.rpartition("@")[2]
    host, _, pid = host_pid.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def app_environment(
    project: ProjectConfig, environment: str
) -> tuple[dict[str, str], dict[str, str]]:
    """The application's resolved settings for a task definition (CFG-*): plain values and
    secret references. Raises ``ConfigError`` listing every problem (DEP-7: before any step)."""
    from deployops.config.appconfig import resolve_for_deploy

    resolved = resolve_for_deploy(project, environment)
    return dict(resolved.environment), dict(resolved.secrets)


def build_notify(
    project: ProjectConfig, environment: str, store: StateStore, clock: Clock
) -> Notify:
    """Notifications as configured (Slack / e-mail / PagerDuty, MON-2), and always a stored
    event plus a stderr line for warnings (DEP-7). Deliveries run in the background and are
    recorded; a channel that is down never blocks or fails a deploy: at exit the command waits
    at most ``notifications.redelivery.exit_wait`` for them, and what is still undelivered is
    kept in the store for ``deployops serve`` to retry."""
    return _notifications(project, environment, store, clock)[0]


def _notifications(
    project: ProjectConfig, environment: str, store: StateStore, clock: Clock
) -> tuple[Notify, NotificationRouter | None]:
    import sys

    from deployops.engine.events import Notice
    from deployops.store import EventRecord

    router = None
    if project.notifications:
        from deployops.drivers.secrets import build_secret_store
        from deployops.notify.outbox import StoreOutbox
        from deployops.notify.router import build_router, store_recorder

        settings = project.notification_settings()
        secrets = build_secret_store(project, environment, clock=clock)
        router = build_router(
            settings,
            resolve=secrets.get,
            clock=clock,
            record=store_recorder(store, clock),
            strict=False,
            outbox=StoreOutbox(
                store=store, clock=clock, environment=environment, policy=settings.redelivery
            ),
        )
        _close_at_exit(router, settings.redelivery.exit_wait)

    def notify(notice: Notice) -> None:
        store.add_event(
            EventRecord(
                ts=clock.now(),
                kind=f"notify.{notice.kind}",
                level=notice.severity,
                message=notice.title,
                data={"text": notice.text, **dict(notice.fields)},
            )
        )
        if notice.severity in ("warning", "critical"):
            sys.stderr.write(f"[{notice.severity}] {notice.title}: {notice.text}\n")
        if router is not None:
            router.submit(notice)

    return notify, router


_EXIT_ROUTERS: list[tuple[NotificationRouter, float]] = []


def _close_at_exit(router: NotificationRouter, wait_s: float) -> None:
    """One exit handler for every router of the process, sharing one bound: a command with
    several routers (deploy and its runner) still waits at most the longest ``exit_wait``."""
    import atexit

    if not _EXIT_ROUTERS:
        atexit.register(close_routers)
    _EXIT_ROUTERS.append((router, wait_s))


def close_routers() -> int:
    """Wait (bounded) for background notices, keep the undelivered ones for the controller,
    and say so on stderr. The number kept or dropped."""
    import sys
    import time

    routers, _EXIT_ROUTERS[:] = list(_EXIT_ROUTERS), []
    if not routers:
        return 0
    deadline = time.monotonic() + max(w for _r, w in routers)
    left: list[Delivery] = []
    for router, _wait in routers:
        left += router.close(timeout=max(0.0, deadline - time.monotonic()))
    if left:
        kept = [d for d in left if d.status == "queued"]
        channels = ", ".join(sorted({d.channel for d in left}))
        if kept:
            sys.stderr.write(
                f"[warning] {len(kept)} notification(s) not delivered yet on {channels}: kept "
                "in the state store; `deployops serve` retries them "
                "(`deployops notifications list` shows them)\n"
            )
        if len(kept) < len(left):
            sys.stderr.write(
                f"[warning] {len(left) - len(kept)} notification(s) on {channels} could not be "
                "delivered or kept; they are in `deployops deployments show` only\n"
            )
    return len(left)


def build_deployer(
    project: ProjectConfig,
    environment: str,
    *,
    store: StateStore,
    reporter: Reporter,
    clock: Clock | None = None,
    platform: Platform | None = None,
) -> Deployer:
    from deployops.drivers import build_platform
    from deployops.engine.deploy import Deployer
    from deployops.engine.observe.rules_observer import RulesObserver
    from deployops.engine.planning.deploy import frozen_rollback
    from deployops.ports.recovery import DatabaseEndpoints

    clk = clock or SystemClock()
    plat = platform or build_platform(project, environment, clock=clk, store=store)

    def observer(service: str, settings: Mapping[str, Any]) -> Observer:
        """RB-1: each deployment is judged by the rollback policy frozen into its plan; with a
        checklist, by its during-deploy items too, separately (CHK-2)."""
        rules = RulesObserver.from_settings(
            compute=plat.compute, metrics=plat.metrics, settings=frozen_rollback(settings)
        )
        if not settings.get("checklist_during"):
            return rules
        from deployops.engine.observe.checklist_gate import GatedObserver

        return GatedObserver(
            rules=rules,
            gate=during_gate(
                environment, service, settings, store=store, metrics=plat.metrics, clock=clk
            ),
        )

    return Deployer(
        project=project,
        environment=environment,
        compute=plat.compute,
        traffic=plat.traffic,
        metrics=plat.metrics,
        prober=plat.prober,
        store=store,
        clock=clk,
        reporter=reporter,
        notify=build_notify(project, environment, store, clk),
        observer=observer,
        app_environment=app_environment,
        crash_point=crash_point_from_environment(),
        extra_ports={
            **platform_ports(plat),
            DatabaseEndpoints: database_endpoints(store, environment, clk),
        },
    )


def database_endpoints(store: StateStore, environment: str, clock: Clock) -> DatabaseEndpoints:
    """Where each service's database is now (a restore's repoint), kept in the state store."""
    from deployops.engine.restore import StoredDatabaseEndpoints

    return StoredDatabaseEndpoints(store=store, environment=environment, clock=clock)


def platform_ports(platform: Platform) -> dict[type[Any], object]:
    """The optional ports a platform brings, by protocol (the engine looks them up by type)."""
    from deployops.ports import NativeDeployments, PlatformRollouts

    ports: dict[type[Any], object] = {}
    native = platform.extras.get("native_deployments")
    if isinstance(native, NativeDeployments):
        ports[NativeDeployments] = native
    rollouts = platform.extras.get("rollouts")
    if isinstance(rollouts, PlatformRollouts):
        ports[PlatformRollouts] = rollouts
    return ports


def during_gate(
    environment: str,
    service: str,
    settings: Mapping[str, Any],
    *,
    store: StateStore,
    metrics: Metrics,
    clock: Clock,
) -> DuringGate:
    """CHK-2's gate for the running deployment of ``service``: its items frozen into the plan,
    each change of state kept with the deployment, holds decided through the store."""
    from deployops.config.checklist import ResolvedItem
    from deployops.engine.checklist import during_recorder, hold_decision
    from deployops.engine.observe.checklist_gate import DuringGate
    from deployops.engine.planning.deploy import frozen_rollback

    rb = frozen_rollback(settings)
    return DuringGate(
        items=[ResolvedItem.from_json(i) for i in settings["checklist_during"]],
        metrics=metrics,
        clock=clock,
        period_s=max(1, round(rb.period)),
        min_requests=rb.min_requests,
        record=during_recorder(store, clock, environment, service),
        decision=hold_decision(store, environment, service),
    )


def build_runner(
    project: ProjectConfig,
    environment: str,
    *,
    store: StateStore,
    reporter: Reporter,
    handlers: HandlerTable,
    extra_ports: Mapping[type[Any], object] | None = None,
    clock: Clock | None = None,
    platform: Platform | None = None,
) -> Runner:
    """The operation runner of one environment with ``handlers`` (an operation kind's step
    table) over the platform's ports plus ``extra_ports`` (looked up by type with
    ``ctx.ports.get``), notifying as configured."""
    from deployops.drivers import build_platform
    from deployops.engine.operation import Env, Ports
    from deployops.engine.runner import Runner

    clk = clock or SystemClock()
    plat = platform or build_platform(project, environment, clock=clk, store=store)
    ports = Ports(
        compute=plat.compute,
        traffic=plat.traffic,
        metrics=plat.metrics,
        prober=plat.prober,
        extra={**platform_ports(plat), **dict(extra_ports or {})},
    )
    env = Env(
        ports=ports,
        store=store,
        clock=clk,
        reporter=reporter,
        notify=build_notify(project, environment, store, clk),
        crash_point=crash_point_from_environment(),
    )
    return Runner(env=env, handlers=handlers)


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
    lease_ttl_s: float | None = None,
    loops: Mapping[str, tuple[float, Callable[[], object]]] | None = None,
) -> Controller:
    """The controller of one environment, wired from ``deployops.yaml``. With ``lease_ttl_s``
    it shares the store with other controllers of the environment: one acts at a time.
    ``loops`` adds self-contained loops (``cli/_recovery.build_dr_schedule(...).loops()``)."""
    from deployops.config.monitoring import alarm_definitions, scaling_policy
    from deployops.domain.model import MetricName
    from deployops.engine.alarms import AlarmEvaluator, RoutedMetrics
    from deployops.engine.autoscaler import Autoscaler
    from deployops.engine.controller import Controller
    from deployops.engine.events import null_reporter
    from deployops.engine.lease import LeaderLease, controller_lease_name

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
    notify, router = _notifications(project, environment, store, clock)
    evaluator = AlarmEvaluator(
        alarms=alarm_definitions(project.alarms),
        environment=environment,
        services=services,
        metrics=metrics,
        traffic=platform.traffic,
        store=store,
        clock=clock,
        notify=notify,
        scale_out=autoscaler.scale_out_for_alarm if autoscaler is not None else None,
    )
    redeliver = None
    if router is not None:
        from deployops.notify.outbox import Redelivery

        # Notices a command could not deliver (a receiver down or hanging), retried here.
        redeliver = Redelivery(
            store=store,
            router=router,
            clock=clock,
            environment=environment,
            policy=project.notification_settings().redelivery,
            worker=worker,
        ).run_due

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

    rotations = None
    from deployops.errors import UnsupportedError

    try:
        rotator = build_rotator(
            project, environment, store=store, clock=clock, owner=worker, compute=platform.compute
        )
    except UnsupportedError:
        rotator = None  # a fetch-only store (.env.local, variables): nothing to rotate
    if rotator is not None:
        managed = project.secrets.managed_secrets()

        def rotations() -> object:
            return rotator.rotate_due(managed, actor="controller", owner_alive=owner_alive)

    from deployops.config.rollback import RollbackSettings, effective_rollback

    # The longest retention any service asks for: a window is kept while one still needs it.
    retention = max(
        (effective_rollback(project, name).measurements_retention for name in services),
        default=(project.rollback or RollbackSettings()).measurements_retention,
    )

    from deployops.engine.watch_after import AfterSwitchWatch

    watch = AfterSwitchWatch(
        store=store,
        clock=clock,
        environment=environment,
        worker=worker,
        # the rollback runs as `deployops rollback` does, through a deployer of its own
        deployer=lambda: build_deployer(
            project,
            environment,
            store=store,
            reporter=null_reporter,
            clock=clock,
            platform=platform,
        ),
        owner_alive=owner_alive,
        every_s=min(1.0, tick_s) if tick_s > 0 else 1.0,
    )

    return Controller(
        store=store,
        measurements_retention_s=retention,
        rotations=rotations,
        watch=watch,
        clock=clock,
        environment=environment,
        traffic=platform.traffic,
        compute=platform.compute,
        worker=worker,
        evaluator=evaluator,
        autoscaler=autoscaler,
        resume=resume,
        owner_alive=owner_alive,
        redeliver=redeliver,
        tick_s=tick_s,
        job_interval_s=job_interval_s,
        loops=dict(loops or {}),
        lease=None
        if lease_ttl_s is None
        else LeaderLease(
            store=store,
            name=controller_lease_name(environment),
            holder=worker,
            clock=clock,
            ttl_s=lease_ttl_s,
        ),
    )


def build_rotator(
    project: ProjectConfig,
    environment: str,
    *,
    store: StateStore,
    clock: Clock,
    owner: str,
    compute: Compute | None = None,
    progress: Callable[[str], None] | None = None,
) -> Rotator:
    """The secret rotator of one environment (SEC-3): its rotating store, the PostgreSQL roles
    of a database password, and the platform's Compute to move replicas (when reachable). It
    runs each rotation as a ``rotate`` operation on the engine's runner (locked, stored step by
    step, resumable with ``deployops resume``), notifying as configured."""
    from deployops.drivers.secrets import build_secret_store, rotating_store
    from deployops.engine.rotation import Rotator

    secrets = rotating_store(
        build_secret_store(project, environment, clock=clock), environment=environment
    )
    targets: dict[str, CredentialTarget] = {}
    settings: dict[str, dict[str, str]] = {}
    for name, cfg in project.secrets.managed.items():
        settings[name] = {
            "token_lifetime": str(cfg.token_lifetime),
            "keep_versions": str(cfg.keep_versions),
        }
        if cfg.database is not None:
            from deployops.drivers.local.pgroles import PostgresRoles

            targets[name] = PostgresRoles(admin_dsn=cfg.database.dsn, app_dsn=cfg.database.app_dsn)
            settings[name]["users"] = ",".join(cfg.database.users)
    return Rotator(
        environment=environment,
        store=store,
        secrets=secrets,
        clock=clock,
        owner=owner,
        compute=compute,
        targets=targets,
        settings=settings,
        progress=progress or (lambda _m: None),
        notify=build_notify(project, environment, store, clock),
        crash_point=crash_point_from_environment(),
    )
