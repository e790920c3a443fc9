"""The local platform's supervisor: replicas as child processes, registered in HAProxy.

It runs inside the daemon (``python -m deployops.drivers.local.daemon``) and owns all state:
task definitions, services, target groups (two colours per service) and listeners. A reconcile
loop keeps each service at its desired count, replaces a replica that exits or fails its health
checks (capped exponential backoff, an event per restart: DR-3 level 1) and replaces tasks of an
old task definition in a rolling way (``maximum_percent`` / ``minimum_healthy_percent``).

A replica enters its target group's backend only after the supervisor's own health check passed
(like an ECS container health check), and HAProxy then needs ``rise`` checks of its own before
it sends a request (see :meth:`HaproxyRuntime.add_server`). Stopping drains first.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from deployops.clock import Clock
from deployops.domain.model import (
    HealthCheck,
    Listener,
    ServiceState,
    TargetGroup,
    TargetHealth,
    TargetState,
    TaskDefinition,
    TaskDefinitionSpec,
    TaskInfo,
    TaskState,
)
from deployops.domain.names import prod_listener, test_listener
from deployops.drivers.local import wire
from deployops.drivers.local.haproxy import (
    SLOT_PREFIX,
    HaproxyRuntime,
    ListenerSpec,
    backends_of,
    split_key,
)
from deployops.drivers.local.paths import LocalPaths, read_json, write_json_atomic
from deployops.errors import ConfigError, DeployopsError, DriverError, NotFoundError
from deployops.ids import new_id
from deployops.secret import Secret
from deployops.store import StateStore
from deployops.store.records import EventRecord

__all__ = ["Supervisor", "SupervisorSettings"]

DRIVER = "local"


@dataclass(frozen=True, slots=True)
class SupervisorSettings:
    host: str = "127.0.0.1"
    port_range: tuple[int, int] = (20000, 29999)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    drain_timeout_s: float = 5.0
    stop_timeout_s: float = 5.0
    start_period_s: float = 15.0  # a replica never healthy by then is replaced
    reconcile_interval_s: float = 0.1
    keep_stopped: int = 5  # stopped tasks shown per service (their last_error)


@dataclass
class _Service:
    name: str
    task_definition: str
    desired: int
    target_group: str
    maximum_percent: int = 200
    minimum_healthy_percent: int = 100
    fail_streak: int = 0
    next_start: float = 0.0
    carry_restarts: list[int] = field(default_factory=list)
    last_error: str = ""


@dataclass
class _Replica:
    task_id: str
    service: str
    td: TaskDefinition
    port: int
    log: Path
    started_mono: float
    started_at: datetime
    restarts: int = 0
    proc: subprocess.Popen[bytes] | None = None
    state: TaskState = TaskState.PENDING
    stopping: bool = False
    healthy: bool = False
    ever_healthy: bool = False
    oks: int = 0
    fails: int = 0
    group: str = ""
    slot: str = ""
    last_error: str = ""
    stopped_mono: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def alive(self) -> bool:
        return self.state in (TaskState.PENDING, TaskState.RUNNING) and not self.stopping

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0


@dataclass
class _Group:
    name: str
    service: str
    health_check: HealthCheck
    slots: int
    created: bool = True
    owners: dict[str, str] = field(default_factory=dict)  # slot -> task id


@dataclass
class _ListenerState:
    name: str
    service: str
    key: str  # "prod" or "test": the key in the service's map file
    port: int
    backend: str
    # the weighted split: percent of the requests sent to the other colour (0: none)
    split_percent: int = 0
    other: str = ""  # the other colour's backend, where the split goes

    def forwards(self) -> tuple[tuple[str, int], ...]:
        if self.split_percent <= 0:
            return ((self.backend, 100),)
        return ((self.backend, 100 - self.split_percent), (self.other, self.split_percent))


class Supervisor:
    """All mutable platform state behind one lock; the daemon's API calls its methods."""

    def __init__(
        self,
        *,
        environment: str,
        project_root: Path,
        paths: LocalPaths,
        clock: Clock,
        runtime: HaproxyRuntime,
        listeners: Sequence[ListenerSpec],
        settings: SupervisorSettings = SupervisorSettings(),
        store: StateStore | None = None,
        rolling: Mapping[str, tuple[int, int]] | None = None,
        secrets: Callable[[str], Secret] | None = None,
    ) -> None:
        self.environment = environment
        # resolves a task definition's ``secret://NAME`` references when a replica starts
        self._secrets = secrets
        self.project_root = project_root
        self.paths = paths
        self.clock = clock
        self.runtime = runtime
        self.settings = settings
        self.store = store
        self._rolling = dict(rolling or {})
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tds: dict[str, list[TaskDefinition]] = {}
        self._services: dict[str, _Service] = {}
        self._replicas: dict[str, _Replica] = {}
        self._groups: dict[str, _Group] = {}
        self._listeners: dict[str, _ListenerState] = {}
        self._port_cursor = settings.port_range[0] + os.getpid() % max(
            1, settings.port_range[1] - settings.port_range[0]
        )
        self._workers: list[threading.Thread] = []
        for spec in listeners:
            blue, green = backends_of(spec.service)
            for name in (blue, green):
                self._groups[name] = _Group(name, spec.service, spec.health_check, spec.slots)
            prod, test = prod_listener(spec.service), test_listener(spec.service)
            self._listeners[prod] = _ListenerState(
                prod, spec.service, "prod", spec.prod_port, blue, other=green
            )
            self._listeners[test] = _ListenerState(
                test, spec.service, "test", spec.test_port, green, other=blue
            )

    # ------------------------------------------------------------------ lifecycle
    def load(self) -> list[tuple[int, float]]:
        """Restore state.json; returns (pid, create_time) of replicas a previous daemon left."""
        data = read_json(self.paths.state_json) or {}
        for family, revs in (data.get("task_definitions") or {}).items():
            self._tds[family] = [
                wire.task_definition_from({"family": family, "revision": i + 1, "spec": s})
                for i, s in enumerate(revs)
            ]
        for name, s in (data.get("services") or {}).items():
            self._services[name] = self._new_service(
                name, str(s["task_definition"]), int(s["desired"]), str(s["target_group"])
            )
        for name, created in (data.get("target_groups") or {}).items():
            if name in self._groups:
                self._groups[name].created = bool(created)
        for name, backend in (data.get("listeners") or {}).items():
            if name in self._listeners and backend in self._groups:
                li = self._listeners[name]
                li.backend = str(backend)
                li.other = self._other_colour(li)
        for name, percent in (data.get("weights") or {}).items():
            if name in self._listeners:
                self._listeners[name].split_percent = max(0, min(100, int(percent)))
        return [(int(p), float(t)) for p, t in data.get("replicas") or ()]

    def write_map_files(self) -> None:
        """The map files HAProxy loads at start (rewritten on every switch and every change of
        weights too): per listener its backend and where its split goes, and the split's
        percent in the weights map. Every key is present, so ``set map`` can change it."""
        for service in {li.service for li in self._listeners.values()}:
            mine = [li for li in self._listeners.values() if li.service == service]
            lines = [f"{li.key} {li.backend}\n{split_key(li.key)} {li.other}\n" for li in mine]
            weights = [f"{li.key} {li.split_percent}\n" for li in mine]
            for path, text in (
                (self.paths.map_file(service), "".join(lines)),
                (self.paths.weights_map_file(service), "".join(weights)),
            ):
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_text(text, encoding="utf-8")
                tmp.replace(path)

    def _other_colour(self, li: _ListenerState) -> str:
        blue, green = backends_of(li.service)
        return green if li.backend == blue else blue

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="reconcile", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Stop every replica (no drain: the platform is going down) and the loop."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        with self._lock:
            replicas = [r for r in self._replicas.values() if r.proc and r.proc.poll() is None]
        for r in replicas:
            self._terminate(r)
        for r in replicas:
            r.done.set()
        for w in list(self._workers):
            w.join(timeout=self.settings.drain_timeout_s + self.settings.stop_timeout_s + 1)
        with self._lock:
            self._save()

    def replica_pids(self) -> dict[str, list[tuple[str, int]]]:
        """compute service -> [(task id, pid)] of live replicas (for the metrics collector)."""
        with self._lock:
            out: dict[str, list[tuple[str, int]]] = {s: [] for s in self._services}
            for r in self._replicas.values():
                if r.alive and r.pid:
                    out.setdefault(r.service, []).append((r.task_id, r.pid))
            return out

    def all_pids(self) -> list[int]:
        with self._lock:
            return [r.pid for r in self._replicas.values() if r.proc and r.proc.poll() is None]

    # ------------------------------------------------------------------ task definitions
    def register_task_definition(self, spec: TaskDefinitionSpec) -> TaskDefinition:
        if not spec.family:
            raise ConfigError("a task definition needs a family", path="family")
        with self._lock:
            revs = self._tds.setdefault(spec.family, [])
            if revs and revs[-1].spec == spec:
                return revs[-1]
            td = TaskDefinition(family=spec.family, revision=len(revs) + 1, spec=spec)
            revs.append(td)
            self._save()
            return td

    def describe_task_definition(self, ref: str) -> TaskDefinition:
        family, _, rev = ref.partition(":")
        with self._lock:
            revs = self._tds.get(family)
            if not revs:
                known = ", ".join(sorted(self._tds)) or "none yet"
                raise NotFoundError(
                    f"no task definition family {family!r} (registered: {known})",
                    path="task_definition",
                )
            if not rev:
                return revs[-1]
            if not rev.isdigit() or not 1 <= int(rev) <= len(revs):
                raise NotFoundError(
                    f"no task definition {ref!r}; {family} has revisions 1..{len(revs)}",
                    path="task_definition",
                )
            return revs[int(rev) - 1]

    # ------------------------------------------------------------------ services
    def _new_service(
        self, name: str, task_definition: str, desired: int, target_group: str
    ) -> _Service:
        base = name.rsplit("-", 1)[0] if name.endswith(("-blue", "-green")) else name
        maxp, minp = self._rolling.get(name) or self._rolling.get(base) or (200, 100)
        return _Service(
            name,
            task_definition,
            desired,
            target_group,
            maximum_percent=maxp,
            minimum_healthy_percent=minp,
        )

    def _check_runnable(self, td: TaskDefinition) -> None:
        try:
            self._resolve_command(td.spec)
        except FileNotFoundError as exc:
            raise ConfigError(
                f"task definition {td.ref}: {exc}",
                path="services.*.command",
                hint="set services.<name>.command in deployops.yaml to a program on PATH or a "
                "path relative to working_dir (e.g. [python, app.py])",
            ) from None

    def create_service(
        self, name: str, *, task_definition: str, desired_count: int, target_group: str
    ) -> ServiceState:
        if desired_count < 0:
            raise ConfigError("desired_count must be 0 or more", path="desired_count")
        td = self.describe_task_definition(task_definition)
        self._check_runnable(td)
        with self._lock:
            if target_group not in self._groups:
                raise NotFoundError(
                    f"no target group {target_group!r}; valid: {', '.join(self._groups)}",
                    path="target_group",
                )
            svc = self._services.get(name)
            if svc is None:
                svc = self._new_service(name, td.ref, desired_count, target_group)
                self._services[name] = svc
            else:
                svc.task_definition, svc.desired = td.ref, desired_count
                if svc.target_group != target_group:
                    svc.target_group = target_group
                    for r in self._replicas.values():
                        if r.service == name and r.slot:
                            self._deregister(r)
            self._save()
            self._reconcile_service(svc)
            return self._describe(svc)

    def update_service(
        self, name: str, *, task_definition: str | None = None, desired_count: int | None = None
    ) -> ServiceState:
        td = self.describe_task_definition(task_definition) if task_definition else None
        if td:
            self._check_runnable(td)
        with self._lock:
            svc = self._get_service(name)
            if td:
                svc.task_definition = td.ref
                svc.fail_streak, svc.next_start = 0, 0.0
            if desired_count is not None:
                if desired_count < 0:
                    raise ConfigError("desired_count must be 0 or more", path="desired_count")
                svc.desired = desired_count
            self._save()
            self._reconcile_service(svc)
            return self._describe(svc)

    def describe_service(self, name: str) -> ServiceState | None:
        with self._lock:
            svc = self._services.get(name)
            return self._describe(svc) if svc else None

    def delete_service(self, name: str) -> None:
        with self._lock:
            svc = self._services.pop(name, None)
            if svc is None:
                return
            victims = [r for r in self._replicas.values() if r.service == name and r.alive]
            for r in victims:
                self._begin_stop(r, reason="service deleted", drain=True)
            self._save()
        for r in victims:
            r.done.wait(self.settings.drain_timeout_s + self.settings.stop_timeout_s + 2)
        with self._lock:
            for tid in [t for t, r in self._replicas.items() if r.service == name]:
                del self._replicas[tid]

    def list_services(self) -> list[str]:
        with self._lock:
            return sorted(self._services)

    def _get_service(self, name: str) -> _Service:
        svc = self._services.get(name)
        if svc is None:
            raise NotFoundError(
                f"no service {name!r} on local/{self.environment}; running: "
                + (", ".join(sorted(self._services)) or "none"),
                path="service",
            )
        return svc

    def _describe(self, svc: _Service) -> ServiceState:
        mine = [r for r in self._replicas.values() if r.service == svc.name]
        live = [r for r in mine if r.state is not TaskState.STOPPED]
        stopped = sorted(
            (r for r in mine if r.state is TaskState.STOPPED), key=lambda r: r.stopped_mono
        )[-self.settings.keep_stopped :]
        tasks = tuple(self._task_info(r) for r in sorted(live, key=lambda r: r.task_id))
        tasks += tuple(self._task_info(r) for r in stopped)
        running = sum(1 for r in live if r.state is TaskState.RUNNING and not r.stopping)
        healthy = sum(1 for r in live if r.healthy and not r.stopping)
        return ServiceState(
            name=svc.name,
            task_definition=svc.task_definition,
            desired=svc.desired,
            running=running,
            healthy=healthy,
            target_group=svc.target_group,
            tasks=tasks,
        )

    def _task_info(self, r: _Replica) -> TaskInfo:
        return TaskInfo(
            task_id=r.task_id,
            state=r.state,
            healthy=r.healthy and not r.stopping,
            port=r.port,
            pid=r.pid,
            task_definition=r.td.ref,
            restarts=r.restarts,
            started_at=r.started_at,
            last_error=r.last_error,
        )

    # ------------------------------------------------------------------ traffic
    def create_target_group(self, name: str, health_check: HealthCheck) -> TargetGroup:
        with self._lock:
            group = self._group(name)
            group.created = True
            self._save()
            for r in self._replicas.values():
                self._maybe_register(r)
        return self.describe_target_group(name) or TargetGroup(name, group.health_check)

    def delete_target_group(self, name: str) -> None:
        with self._lock:
            group = self._group(name)
            users = [li.name for li in self._listeners.values() if name in dict(li.forwards())]
            if users:
                raise DriverError(
                    "haproxy",
                    "delete target group",
                    f"{name} still receives traffic from listener {', '.join(users)}",
                    hint="switch the listener to the other colour first",
                )
            group.created = False
            for r in self._replicas.values():
                if r.group == name:
                    self._deregister(r)
            self._save()

    def describe_target_group(self, name: str) -> TargetGroup | None:
        with self._lock:
            group = self._group(name)
            if not group.created:
                return None
            owners = dict(group.owners)
            ports = {r.task_id: r.port for r in self._replicas.values()}
        targets: list[TargetHealth] = []
        for row in self.runtime.servers(name):
            task = owners.get(row.server)
            if row.status == "MAINT" or task is None:
                continue
            targets.append(
                TargetHealth(
                    target_id=task,
                    address=f"{self.settings.host}:{ports.get(task, 0)}",
                    state=_target_state(row.status, row.check_status),
                    reason=f"{row.status} {row.check_status}".strip(),
                )
            )
        return TargetGroup(name=name, health_check=group.health_check, targets=tuple(targets))

    def list_target_groups(self) -> list[str]:
        with self._lock:
            return sorted(n for n, g in self._groups.items() if g.created)

    def _group(self, name: str) -> _Group:
        group = self._groups.get(name)
        if group is None:
            raise NotFoundError(
                f"no target group {name!r} on local/{self.environment}; valid: "
                + ", ".join(self._groups),
                path="target_group",
                hint="target groups are the two colours of each service: {service}-blue, "
                "{service}-green",
            )
        return group

    def list_listeners(self) -> list[Listener]:
        return [self.describe_listener(n) for n in sorted(self._listeners)]

    def describe_listener(self, name: str) -> Listener:
        with self._lock:
            li = self._listener(name)
            return Listener(name=li.name, port=li.port, forwards=li.forwards())

    def switch_listener(self, name: str, target_group: str) -> Listener:
        """``set map`` on the admin socket, read back with ``show map``; never a reload.

        A split in progress ends: the listener's backend is set first (with a split towards
        the new backend, every request reaches it from then on), then the split's percent
        goes to 0, and only then does the split point at the other colour again."""
        with self._lock:
            li = self._listener(name)
            self._check_group(li, target_group, "switch listener")
            mapfile = self.paths.map_file(li.service)
            weights = self.paths.weights_map_file(li.service)
            self.runtime.set_map(mapfile, li.key, target_group)
            li.backend = target_group
            self.runtime.set_map(weights, li.key, "0")
            li.split_percent = 0
            li.other = self._other_colour(li)
            self.runtime.set_map(mapfile, split_key(li.key), li.other)
            self._read_back(li, "switch listener")
            self.write_map_files()  # a restart of HAProxy keeps the switch
            self._save()
            return Listener(name=li.name, port=li.port, forwards=li.forwards())

    def set_weights(self, name: str, weights: Mapping[str, int]) -> Listener:
        """Split the listener's requests between the two colours by weight (the canary and
        linear shifts): ``set map`` of the split's percent, read back; never a reload.

        The colour the listener forwards to keeps its backend; the other colour gets
        ``round(100 * its weight / total)`` percent of the requests (HAProxy draws
        ``rand(100)`` per request). A single colour with weight > 0 is a switch to it."""
        with self._lock:
            li = self._listener(name)
            for tg in weights:
                self._check_group(li, tg, "set weights")
            wanted = {tg: int(w) for tg, w in weights.items()}
            if any(w < 0 for w in wanted.values()):
                raise ConfigError(
                    f"weights of {name} must be 0 or more, not {wanted}", path="weights"
                )
            live = {tg: w for tg, w in wanted.items() if w > 0}
            if not live:
                raise ConfigError(
                    f"weights of {name} send traffic nowhere: {wanted}",
                    path="weights",
                    hint="give at least one target group a weight above 0",
                )
            if len(live) == 1:
                return self.switch_listener(name, next(iter(live)))
            total = sum(live.values())
            other = self._other_colour(li)
            percent = round(100 * live.get(other, 0) / total)
            percent = max(1, min(99, percent))  # both colours asked for traffic
            mapfile = self.paths.map_file(li.service)
            weights_map = self.paths.weights_map_file(li.service)
            if self.runtime.show_map(mapfile).get(split_key(li.key)) != other:
                # Point the split at the other colour with no share first.
                self.runtime.set_map(weights_map, li.key, "0")
                self.runtime.set_map(mapfile, split_key(li.key), other)
            li.other = other
            self.runtime.set_map(weights_map, li.key, str(percent))
            li.split_percent = percent
            self._read_back(li, "set weights")
            self.write_map_files()
            self._save()
            return Listener(name=li.name, port=li.port, forwards=li.forwards())

    def _check_group(self, li: _ListenerState, target_group: str, what: str) -> None:
        group = self._group(target_group)
        if group.service != li.service:
            raise NotFoundError(
                f"listener {li.name} serves {li.service}; {target_group} belongs to "
                f"{group.service}",
                path="target_group",
                hint=f"use {' or '.join(backends_of(li.service))}",
            )
        # `set map` takes a misspelt backend silently: check it exists in HAProxy first.
        if target_group not in self.runtime.backends():
            raise DriverError("haproxy", what, f"HAProxy has no backend {target_group}")

    def _read_back(self, li: _ListenerState, what: str) -> None:
        """Both maps read back what was set (``show map``), or the change is an error."""
        mapfile = self.paths.map_file(li.service)
        seen = self.runtime.show_map(mapfile)
        percent = self.runtime.show_map(self.paths.weights_map_file(li.service)).get(li.key)
        got = (seen.get(li.key), seen.get(split_key(li.key)), percent)
        expected = (li.backend, li.other, str(li.split_percent))
        if got != expected:
            raise DriverError(
                "haproxy",
                what,
                f"maps of {li.service} read {li.key} -> {got[0]}, split {got[1]} at {got[2]}%, "
                f"expected {expected[0]}, split {expected[1]} at {expected[2]}%",
                retryable=True,
            )

    def _listener(self, name: str) -> _ListenerState:
        li = self._listeners.get(name)
        if li is None:
            raise NotFoundError(
                f"no listener {name!r}; valid: {', '.join(sorted(self._listeners))}",
                path="listener",
            )
        return li

    def reapply_registrations(self) -> None:
        """After HAProxy restarted: put every registered replica back into its slot, those
        healthy by the supervisor's own checks in service at once, a stopping one draining."""
        with self._lock:
            for r in self._replicas.values():
                if r.slot and r.group:
                    self.runtime.restore_server(
                        r.group, r.slot, r.port, self.settings.host, up=r.healthy
                    )
                    if r.stopping:
                        self.runtime.drain_server(r.group, r.slot)

    # ------------------------------------------------------------------ reconcile
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive one bad pass
                sys.stderr.write(f"reconcile failed: {exc!r}\n")
            self._stop.wait(self.settings.reconcile_interval_s)

    def reconcile(self) -> None:
        with self._lock:
            for r in list(self._replicas.values()):
                if r.alive and r.proc is not None and r.proc.poll() is not None:
                    self._on_exit(r)
            for svc in list(self._services.values()):
                self._reconcile_service(svc)
            for r in self._replicas.values():
                self._maybe_register(r)
            self._forget_old_stopped()

    def _reconcile_service(self, svc: _Service) -> None:
        alive = [r for r in self._replicas.values() if r.service == svc.name and r.alive]
        new = [r for r in alive if r.td.ref == svc.task_definition]
        old = [r for r in alive if r.td.ref != svc.task_definition]
        limit = max(svc.desired, svc.desired * svc.maximum_percent // 100)
        min_healthy = math.ceil(svc.desired * svc.minimum_healthy_percent / 100)
        now = self.clock.monotonic()
        while len(new) < svc.desired and len(new) + len(old) < limit and now >= svc.next_start:
            started = self._start_replica(svc)
            if started is None:
                break
            new.append(started)
        if len(new) > svc.desired:
            extra = sorted(new, key=lambda r: (r.healthy, r.started_mono))
            for r in extra[: len(new) - svc.desired]:
                self._begin_stop(r, reason="scaled in", drain=True)
        # A new replica counts towards minimum_healthy_percent only once the load balancer
        # sends it traffic (its own checks passed in HAProxy), not when our probe first
        # answers: stopping an old one earlier would leave the backend short (503s).
        up = self._servers_up(svc.target_group) if old else set()
        healthy_total = sum(1 for r in old if r.healthy) + sum(
            1 for r in new if r.healthy and r.slot in up
        )
        for r in sorted(old, key=lambda r: r.healthy):
            if not r.healthy:
                self._begin_stop(r, reason="replaced by a new task definition", drain=False)
            elif healthy_total - 1 >= min_healthy:
                self._begin_stop(r, reason="replaced by a new task definition", drain=True)
                healthy_total -= 1

    def _servers_up(self, group: str) -> set[str]:
        """Slots of ``group`` that HAProxy marks UP (empty if it cannot be asked)."""
        try:
            return {row.server for row in self.runtime.servers(group) if row.status == "UP"}
        except DriverError:
            return set()

    def _forget_old_stopped(self) -> None:
        per: dict[str, list[_Replica]] = {}
        for r in self._replicas.values():
            if r.state is TaskState.STOPPED and r.done.is_set():
                per.setdefault(r.service, []).append(r)
        for rs in per.values():
            rs.sort(key=lambda r: r.stopped_mono)
            for r in rs[: -self.settings.keep_stopped]:
                self._replicas.pop(r.task_id, None)

    # ------------------------------------------------------------------ replicas
    def _resolve_command(self, spec: TaskDefinitionSpec) -> list[str]:
        if not spec.command:
            raise FileNotFoundError("no command to run (the local platform runs a command)")
        cwd = self._cwd(spec)
        prog = spec.command[0]
        if "/" in prog:
            path = (cwd / prog) if not os.path.isabs(prog) else Path(prog)
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise FileNotFoundError(f"command {prog!r} is not an executable file in {cwd}")
            return [str(path), *spec.command[1:]]
        found = shutil.which(prog)
        if found is None and prog in ("python", "python3"):
            found = sys.executable
        if found is None:
            raise FileNotFoundError(f"command {prog!r} not found on PATH")
        return [found, *spec.command[1:]]

    def _cwd(self, spec: TaskDefinitionSpec) -> Path:
        if not spec.working_dir:
            return self.project_root
        wd = Path(spec.working_dir)
        return wd if wd.is_absolute() else self.project_root / wd

    def _allocate_port(self) -> int:
        lo, hi = self.settings.port_range
        used = {r.port for r in self._replicas.values() if r.state is not TaskState.STOPPED}
        span = hi - lo + 1
        for _ in range(span):
            port = lo + (self._port_cursor - lo) % span
            self._port_cursor = port + 1
            if port in used:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((self.settings.host, port))
                except OSError:
                    continue
            return port
        raise DriverError(
            DRIVER,
            "allocate port",
            f"no free port in {lo}-{hi}",
            hint="widen environments.<env>.local.replica_port_range",
        )

    def _start_replica(self, svc: _Service) -> _Replica | None:
        td = self.describe_task_definition(svc.task_definition)
        now = self.clock.now()
        task_id = new_id("task", now).replace("task-", f"{svc.name}-", 1)
        restarts = svc.carry_restarts.pop(0) if svc.carry_restarts else 0
        log = self.paths.task_log(svc.name, task_id)
        r = _Replica(
            task_id=task_id,
            service=svc.name,
            td=td,
            port=0,
            log=log,
            started_mono=self.clock.monotonic(),
            started_at=now,
            restarts=restarts,
        )
        try:
            cmd = self._resolve_command(td.spec)
            r.port = self._allocate_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DEPLOYOPS_"))}
            env.update(dict(td.spec.environment))
            env.update(self._secret_environment(td.spec))
            env.update(
                PORT=str(r.port),
                DEPLOYOPS_TASK_ID=task_id,
                DEPLOYOPS_SERVICE=svc.name,
                DEPLOYOPS_TASK_DEFINITION=td.ref,
                PYTHONUNBUFFERED="1",
            )
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("ab") as out:
                r.proc = subprocess.Popen(
                    cmd,
                    cwd=self._cwd(td.spec),
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except (OSError, DriverError) as exc:
            message = exc.message if isinstance(exc, DriverError) else str(exc)
            r.state, r.last_error = TaskState.STOPPED, f"could not start: {message}"
            r.stopped_mono = self.clock.monotonic()
            r.done.set()
            self._replicas[task_id] = r
            self._failed(svc, r, r.last_error)
            return None
        r.state = TaskState.RUNNING
        self._replicas[task_id] = r
        if restarts:
            self._event(
                "task.restarted",
                f"{svc.name}: started {task_id} (restart {restarts}) on port {r.port}",
                service=svc.name,
                level="warning",
                data={"task": task_id, "restarts": restarts, "pid": r.pid, "port": r.port},
            )
        checker = threading.Thread(
            target=self._health_loop, args=(r,), name=f"health-{task_id}", daemon=True
        )
        checker.start()
        self._save()
        return r

    def _secret_environment(self, spec: TaskDefinitionSpec) -> dict[str, str]:
        """The task definition's secrets, resolved late, like ECS's ``valueFrom`` (SEC-1).
        Values go only into the replica's environment: never into logs, state or errors."""
        out: dict[str, str] = {}
        for key, ref in spec.secrets:
            name = ref.removeprefix("secret://")
            if self._secrets is None:
                raise DriverError(
                    "local",
                    "start replica",
                    f"{key} needs secret {name!r} but no secret store is configured",
                )
            try:
                out[key] = self._secrets(name).reveal()
            except DeployopsError as exc:
                raise DriverError(
                    "local",
                    "start replica",
                    f"secret {name!r} for {key} cannot be resolved: {exc.message}",
                    hint=exc.hint,
                ) from None
        return out

    def _failed(self, svc: _Service, r: _Replica, why: str) -> None:
        """A replica died or was judged unhealthy: schedule its replacement with backoff."""
        svc.fail_streak += 1
        delay = min(
            self.settings.backoff_max_s,
            self.settings.backoff_initial_s * 2 ** (svc.fail_streak - 1),
        )
        svc.next_start = self.clock.monotonic() + delay
        svc.last_error = why
        svc.carry_restarts.append(r.restarts + 1)
        self._event(
            "task.failed",
            f"{svc.name}: task {r.task_id} {why}; replacing it in {delay:g}s",
            service=svc.name,
            level="warning",
            data={"task": r.task_id, "reason": why, "backoff_s": delay, "log": str(r.log)},
        )

    def _on_exit(self, r: _Replica) -> None:
        assert r.proc is not None
        code = r.proc.returncode
        why = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        tail = _tail(r.log)
        r.state, r.healthy = TaskState.STOPPED, False
        r.last_error = why + (f": {tail}" if tail else "")
        r.stopped_mono = self.clock.monotonic()
        r.done.set()
        self._deregister(r, drain=False)
        svc = self._services.get(r.service)
        if svc is not None:
            self._failed(svc, r, why)
        self._save()

    def _health_loop(self, r: _Replica) -> None:
        hc = r.td.spec.health_check
        url = f"http://{self.settings.host}:{r.port}{hc.path}"
        wait = min(0.1, hc.interval_s)
        with httpx.Client(timeout=hc.timeout_s) as client:
            while not r.done.wait(wait):
                wait = hc.interval_s
                try:
                    ok = client.get(url).status_code == hc.expected_status
                except httpx.HTTPError:
                    ok = False
                with self._lock:
                    if not r.alive:
                        return
                    self._observe(r, ok, hc)

    def _observe(self, r: _Replica, ok: bool, hc: HealthCheck) -> None:
        if ok:
            r.oks, r.fails = r.oks + 1, 0
            if not r.healthy and r.oks >= hc.healthy_threshold:
                r.healthy = r.ever_healthy = True
                svc = self._services.get(r.service)
                if svc is not None:
                    svc.fail_streak = 0
                self._maybe_register(r)
            return
        r.oks, r.fails = 0, r.fails + 1
        too_late = self.clock.monotonic() - r.started_mono > self.settings.start_period_s
        if r.fails >= hc.unhealthy_threshold and (r.healthy or too_late):
            why = (
                f"failed {r.fails} health checks on {hc.path}"
                if r.ever_healthy
                else f"not healthy on {hc.path} within {self.settings.start_period_s:g}s"
            )
            r.healthy = False
            self._deregister(r, drain=False)  # out of the pool at once
            svc = self._services.get(r.service)
            if svc is not None:
                self._failed(svc, r, why)
            self._begin_stop(r, reason=why, drain=False)

    def _maybe_register(self, r: _Replica) -> None:
        if not (r.alive and r.healthy) or r.slot:
            return
        svc = self._services.get(r.service)
        if svc is None:
            return
        group = self._groups.get(svc.target_group)
        if group is None or not group.created:
            return
        for i in range(1, group.slots + 1):
            slot = f"{SLOT_PREFIX}{i}"
            if slot not in group.owners:
                break
        else:
            r.last_error = f"target group {group.name} is full ({group.slots} slots)"
            return
        try:
            self.runtime.add_server(group.name, slot, r.port, self.settings.host)
        except DriverError as exc:
            r.last_error = f"could not register in {group.name}: {exc.message}"
            return
        group.owners[slot] = r.task_id
        r.group, r.slot = group.name, slot

    def _deregister(self, r: _Replica, *, drain: bool = False) -> None:
        """Take ``r`` out of its backend; with ``drain`` only stop new requests."""
        if not r.slot:
            return
        with contextlib.suppress(DriverError):
            if drain:
                self.runtime.drain_server(r.group, r.slot)
                return
            self.runtime.remove_server(r.group, r.slot)
        group = self._groups.get(r.group)
        if group is not None and group.owners.get(r.slot) == r.task_id:
            del group.owners[r.slot]
        r.group, r.slot = "", ""

    def _begin_stop(self, r: _Replica, *, reason: str, drain: bool) -> None:
        if r.stopping or r.state is TaskState.STOPPED:
            return
        r.stopping = True
        r.last_error = reason
        worker = threading.Thread(
            target=self._stop_worker, args=(r, drain), name=f"stop-{r.task_id}", daemon=True
        )
        self._workers = [w for w in self._workers if w.is_alive()] + [worker]
        worker.start()

    def _stop_worker(self, r: _Replica, drain: bool) -> None:
        if drain and r.slot:
            with self._lock:
                self._deregister(r, drain=True)
                group, slot = r.group, r.slot
            deadline = self.clock.monotonic() + self.settings.drain_timeout_s
            while group and self.clock.monotonic() < deadline:
                try:
                    rows = [s for s in self.runtime.servers(group) if s.server == slot]
                except DriverError:
                    break
                if not rows or rows[0].current_sessions == 0:
                    break
                self.clock.sleep(0.05)
        with self._lock:
            self._deregister(r, drain=False)
        self._terminate(r)
        with self._lock:
            r.state, r.healthy = TaskState.STOPPED, False
            r.stopped_mono = self.clock.monotonic()
            r.done.set()
            self._save()

    def _terminate(self, r: _Replica) -> None:
        proc = r.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=self.settings.stop_timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=self.settings.stop_timeout_s)

    # ------------------------------------------------------------------ persistence & events
    def _save(self) -> None:
        data: dict[str, Any] = {
            "task_definitions": {
                fam: [wire.spec_to(td.spec) for td in revs] for fam, revs in self._tds.items()
            },
            "services": {
                n: {
                    "task_definition": s.task_definition,
                    "desired": s.desired,
                    "target_group": s.target_group,
                }
                for n, s in self._services.items()
            },
            "target_groups": {n: g.created for n, g in self._groups.items()},
            "listeners": {n: li.backend for n, li in self._listeners.items()},
            "weights": {n: li.split_percent for n, li in self._listeners.items()},
            "replicas": [
                [r.pid, _create_time(r.pid)]
                for r in self._replicas.values()
                if r.proc is not None and r.proc.poll() is None
            ],
        }
        try:
            write_json_atomic(self.paths.state_json, data)
        except OSError as exc:
            sys.stderr.write(f"could not save {self.paths.state_json}: {exc}\n")

    def platform_event(self, kind: str, message: str, *, level: str = "warning") -> None:
        """Something the platform did by itself (e.g. restarted HAProxy): the daemon log and a
        stored event of the environment."""
        self._event(kind, message, service="", level=level, data={})

    def _event(
        self, kind: str, message: str, *, service: str, level: str, data: dict[str, Any]
    ) -> None:
        sys.stderr.write(f"{kind}: {message}\n")
        if self.store is None:
            return
        try:
            self.store.add_event(
                EventRecord(
                    ts=self.clock.now(),
                    kind=kind,
                    message=message,
                    level=level,
                    environment=self.environment,
                    service=service,
                    data=data,
                )
            )
        except Exception as exc:  # noqa: BLE001 - an event must not stop the supervisor
            sys.stderr.write(f"could not record event: {exc!r}\n")

    def status(self) -> dict[str, Any]:
        with self._lock:
            services = [wire.service_to(self._describe(s)) for s in self._services.values()]
        return {
            "listeners": [wire.listener_to(li) for li in self.list_listeners()],
            "services": services,
        }


def _target_state(status: str, check: str) -> TargetState:
    if status.startswith("UP"):
        return TargetState.HEALTHY
    if status in ("DRAIN", "NOLB") or status.startswith("DRAIN"):
        return TargetState.DRAINING
    if status.startswith("DOWN") and (not check or check.startswith("INI")):
        return TargetState.INITIAL
    return TargetState.UNHEALTHY


def _create_time(pid: int) -> float:
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:  # noqa: BLE001 - psutil raises several kinds for a vanished process
        return 0.0


def _tail(path: Path, limit: int = 300) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            text = f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return text.splitlines()[-1] if text else ""


def kill_stale(replicas: Sequence[tuple[int, float]]) -> list[int]:
    """Kill replicas a previous daemon left running (pid and start time must both match)."""
    import psutil

    killed: list[int] = []
    for pid, created in replicas:
        try:
            proc = psutil.Process(pid)
            if created and abs(proc.create_time() - created) > 0.01:
                continue
            os.killpg(pid, signal.SIGKILL)
            killed.append(pid)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return killed
