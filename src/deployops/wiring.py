"""The composition root: builds platforms, the engine and notifiers from ``deployops.yaml``.

Only front ends (``cli``, ``web``, the controller) call this; the engine itself sees ports.
"""

from __future__ import annotations

import getpass
import os
import socket
from typing import TYPE_CHECKING

from deployops.clock import Clock, SystemClock

if TYPE_CHECKING:
    from deployops.config.project import ProjectConfig
    from deployops.drivers import Platform
    from deployops.engine.deploy import Deployer
    from deployops.engine.events import Notify, Reporter
    from deployops.store import StateStore

__all__ = ["build_deployer", "owner_alive", "whoami"]


def whoami() -> str:
    """``user@host:pid``: who holds a lock, so a stale one can be recognised."""
    return f"{getpass.getuser()}@{socket.gethostname()}:{os.getpid()}"


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
    recorded; a channel that is down never blocks or fails a deploy."""
    import atexit
    import sys

    from deployops.engine.events import Notice
    from deployops.store import EventRecord

    router = None
    if project.notifications:
        from deployops.config.appconfig import paths_for
        from deployops.config.appconfig.loader import default_secret_store
        from deployops.notify.router import build_router, store_recorder

        secrets = default_secret_store(paths_for(project), environment)
        router = build_router(
            project.notification_settings(),
            resolve=secrets.get,
            clock=clock,
            record=store_recorder(store, clock),
            strict=False,
        )
        atexit.register(router.close, wait=True)

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

    return notify


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

    clk = clock or SystemClock()
    plat = platform or build_platform(project, environment, clock=clk, store=store)
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
        app_environment=app_environment,
    )
