"""The reference in-memory platform: every port, no I/O, driven by the injected clock.

It is what the engine's unit tests and the contract suites run against on a virtual clock,
the way libcloud keeps a dummy driver. It understands the sample service's fault switches in a
task definition's environment (``FAULT_HEALTH_FAIL``, ``FAULT_CRASH_ON_START``,
``FAULT_ERROR_RATE``, ``FAULT_LATENCY_MS``, ``FAULT_LEAK_MB_PER_S``, ``FAULT_CPU``, and
``FAULT_DEGRADE_AFTER_S``: the error and latency faults begin that long after a task started),
so failure paths can be rehearsed in milliseconds. ``MemoryCloud.faults`` applies switches to every
service at once (a shared dependency failing: the release is not to blame). What it cannot
show: real processes, sockets, HAProxy timing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from deployops.clock import Clock
from deployops.domain.model import (
    Datapoint,
    HealthCheck,
    Listener,
    Measurement,
    MetricName,
    MetricQuery,
    ProbeResult,
    ServiceState,
    Statistic,
    TargetGroup,
    TargetHealth,
    TargetState,
    TaskDefinition,
    TaskDefinitionSpec,
    TaskInfo,
    TaskState,
)
from deployops.domain.names import colours, prod_listener, test_listener
from deployops.errors import DriverError, NotFoundError

__all__ = [
    "MemoryCloud",
    "MemoryCompute",
    "MemoryMetrics",
    "MemoryNotifier",
    "MemoryProber",
    "MemoryTraffic",
]


@dataclass
class _Task:
    task_id: str
    task_definition: str
    started: float
    healthy_after: float | None  # monotonic time it turns healthy; None: never


@dataclass
class _Service:
    name: str
    task_definition: str
    desired: int
    target_group: str
    tasks: list[_Task] = field(default_factory=list)


class MemoryCloud:
    """Shared state of the in-memory platform; the ports below are views of it."""

    def __init__(
        self,
        *,
        clock: Clock,
        start_delay_s: float = 1.0,
        listeners: Sequence[str] = (),
        base_port: int = 18000,
    ) -> None:
        self.clock = clock
        self.start_delay_s = start_delay_s
        self.lock = threading.RLock()
        self.task_definitions: dict[str, list[TaskDefinition]] = {}
        self.services: dict[str, _Service] = {}
        self.target_groups: dict[str, HealthCheck] = {}
        self.listeners: dict[str, tuple[int, str]] = {}
        self.switches: list[tuple[float, str, str]] = []  # (monotonic, listener, tg)
        # A weighted split per listener: the other target group and its weight (of 100).
        self.splits: dict[str, tuple[str, int]] = {}
        self.weight_changes: list[tuple[float, str, dict[str, int]]] = []
        # Fault switches applied to every service on top of its own (an outage of a shared
        # dependency shows on the previous version too).
        self.faults: dict[str, str] = {}
        # Fault switches of one service (by name) that start while it runs.
        self.service_faults: dict[str, dict[str, str]] = {}
        self._seq = 0
        for i, name in enumerate(listeners):
            self.add_listener(name, base_port + i, "")

    def add_listener(self, name: str, port: int, target_group: str) -> None:
        self.listeners[name] = (port, target_group)

    def add_service_listeners(self, service: str, port: int) -> None:
        blue, green = colours(service)
        self.add_listener(prod_listener(service), port, blue)
        self.add_listener(test_listener(service), port + 1, green)

    def spec(self, ref: str) -> TaskDefinitionSpec:
        family, _, rev = ref.partition(":")
        return self.task_definitions[family][int(rev) - 1].spec

    def reconcile(self) -> None:
        now = self.clock.monotonic()
        with self.lock:
            for svc in self.services.values():
                spec = self.spec(svc.task_definition)
                env = dict(spec.environment)
                if env.get("FAULT_CRASH_ON_START") == "1":
                    svc.tasks = []
                    continue
                current = [t for t in svc.tasks if t.task_definition == svc.task_definition]
                current = current[: svc.desired]
                # Rolling replacement (IAC-4): an old task stops only as a new one is healthy.
                new_healthy = sum(1 for t in current if self.is_healthy(t))
                old = [t for t in svc.tasks if t.task_definition != svc.task_definition]
                svc.tasks = current + old[: max(0, svc.desired - new_healthy)]
                while len(current) < svc.desired:
                    self._seq += 1
                    never = env.get("FAULT_HEALTH_FAIL") == "1"
                    task = _Task(
                        task_id=f"{svc.name}-{self._seq}",
                        task_definition=svc.task_definition,
                        started=now,
                        healthy_after=None if never else now + self.start_delay_s,
                    )
                    current.append(task)
                    svc.tasks.append(task)

    def environment(self, svc: _Service) -> dict[str, str]:
        """A service's fault switches: its task definition's, then the platform-wide ones."""
        env = dict(self.spec(svc.task_definition).environment)
        env.update(self.faults)
        env.update(self.service_faults.get(svc.name, {}))
        return env

    def is_healthy(self, task: _Task) -> bool:
        return task.healthy_after is not None and self.clock.monotonic() >= task.healthy_after

    def service_for(self, target_group: str) -> _Service | None:
        with self.lock:
            for svc in self.services.values():
                if svc.target_group == target_group and svc.desired > 0:
                    return svc
        return None


class MemoryCompute:
    name: ClassVar[str] = "memory"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"task_definitions", "services", "rolling_update"}
    )

    def __init__(self, *, cloud: MemoryCloud) -> None:
        self.cloud = cloud

    def register_task_definition(self, spec: TaskDefinitionSpec) -> TaskDefinition:
        with self.cloud.lock:
            revs = self.cloud.task_definitions.setdefault(spec.family, [])
            if revs and revs[-1].spec == spec:
                return revs[-1]
            td = TaskDefinition(family=spec.family, revision=len(revs) + 1, spec=spec)
            revs.append(td)
            return td

    def describe_task_definition(self, ref: str) -> TaskDefinition:
        family, _, rev = ref.partition(":")
        revs = self.cloud.task_definitions.get(family)
        if not revs or (rev and not (rev.isdigit() and 0 < int(rev) <= len(revs))):
            raise NotFoundError(f"no task definition {ref!r}", path="task_definition")
        return revs[int(rev) - 1] if rev else revs[-1]

    def create_service(
        self, name: str, *, task_definition: str, desired_count: int, target_group: str
    ) -> ServiceState:
        self.describe_task_definition(task_definition)
        with self.cloud.lock:
            svc = self.cloud.services.get(name)
            if svc is None:
                svc = _Service(name, task_definition, desired_count, target_group)
                self.cloud.services[name] = svc
            else:
                svc.task_definition, svc.desired = task_definition, desired_count
                svc.target_group = target_group
        self.cloud.reconcile()
        return self._state(svc)

    def update_service(
        self, name: str, *, task_definition: str | None = None, desired_count: int | None = None
    ) -> ServiceState:
        with self.cloud.lock:
            svc = self.cloud.services.get(name)
            if svc is None:
                raise NotFoundError(f"no service {name!r}", path="service")
            if task_definition is not None:
                self.describe_task_definition(task_definition)
                svc.task_definition = task_definition
            if desired_count is not None:
                svc.desired = desired_count
        self.cloud.reconcile()
        return self._state(svc)

    def describe_service(self, name: str) -> ServiceState | None:
        self.cloud.reconcile()
        svc = self.cloud.services.get(name)
        return self._state(svc) if svc else None

    def delete_service(self, name: str) -> None:
        with self.cloud.lock:
            self.cloud.services.pop(name, None)

    def list_services(self) -> Sequence[str]:
        return sorted(self.cloud.services)

    def _state(self, svc: _Service) -> ServiceState:
        tasks = tuple(
            TaskInfo(
                task_id=t.task_id,
                state=TaskState.RUNNING,
                healthy=self.cloud.is_healthy(t),
                task_definition=t.task_definition,
            )
            for t in svc.tasks
        )
        return ServiceState(
            name=svc.name,
            task_definition=svc.task_definition,
            desired=svc.desired,
            running=len(tasks),
            healthy=sum(1 for t in tasks if t.healthy),
            target_group=svc.target_group,
            tasks=tasks,
        )


class MemoryTraffic:
    name: ClassVar[str] = "memory"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"atomic_switch", "test_listener", "health_checks", "weights"}
    )

    def __init__(self, *, cloud: MemoryCloud, fail_switch: bool = False) -> None:
        self.cloud = cloud
        self.fail_switch = fail_switch

    def create_target_group(self, name: str, *, health_check: HealthCheck) -> TargetGroup:
        self.cloud.target_groups[name] = health_check
        tg = self.describe_target_group(name)
        assert tg is not None
        return tg

    def delete_target_group(self, name: str) -> None:
        for lname, (_, tg) in self.cloud.listeners.items():
            split = self.cloud.splits.get(lname)
            if tg == name or (split is not None and split[0] == name):
                raise DriverError("memory", "delete_target_group", f"{lname} forwards to {name}")
        self.cloud.target_groups.pop(name, None)

    def describe_target_group(self, name: str) -> TargetGroup | None:
        hc = self.cloud.target_groups.get(name)
        if hc is None:
            return None
        svc = self.cloud.service_for(name)
        targets = tuple(
            TargetHealth(
                target_id=t.task_id,
                address=t.task_id,
                state=TargetState.HEALTHY if self.cloud.is_healthy(t) else TargetState.INITIAL,
            )
            for t in (svc.tasks if svc else [])
        )
        return TargetGroup(name=name, health_check=hc, targets=targets)

    def list_target_groups(self) -> Sequence[str]:
        return sorted(self.cloud.target_groups)

    def describe_listener(self, name: str) -> Listener:
        try:
            port, tg = self.cloud.listeners[name]
        except KeyError:
            raise NotFoundError(f"no listener {name!r}", path="listener") from None
        split = self.cloud.splits.get(name)
        if tg and split is not None:
            return Listener(name=name, port=port, forwards=((tg, 100 - split[1]), split))
        return Listener(name=name, port=port, forwards=((tg, 100),) if tg else ())

    def switch_listener(self, name: str, target_group: str) -> Listener:
        if self.fail_switch:
            raise DriverError("memory", "switch_listener", "injected failure", retryable=True)
        if name not in self.cloud.listeners:
            raise NotFoundError(f"no listener {name!r}", path="listener")
        if target_group not in self.cloud.target_groups:
            raise NotFoundError(f"no target group {target_group!r}", path="target_group")
        port, _ = self.cloud.listeners[name]
        self.cloud.listeners[name] = (port, target_group)
        self.cloud.splits.pop(name, None)
        self.cloud.switches.append((self.cloud.clock.monotonic(), name, target_group))
        return self.describe_listener(name)

    def set_weights(self, name: str, weights: Mapping[str, int]) -> Listener:
        """Like the local driver: the listener's group keeps its place, the other gets its
        share in whole percent; one group with weight > 0 is a switch to it."""
        if self.fail_switch:
            raise DriverError("memory", "set_weights", "injected failure", retryable=True)
        if name not in self.cloud.listeners:
            raise NotFoundError(f"no listener {name!r}", path="listener")
        for tg in weights:
            if tg not in self.cloud.target_groups:
                raise NotFoundError(f"no target group {tg!r}", path="target_group")
        live = {tg: int(w) for tg, w in weights.items() if int(w) > 0}
        if not live:
            raise DriverError("memory", "set_weights", f"weights send nothing anywhere: {weights}")
        self.cloud.weight_changes.append((self.cloud.clock.monotonic(), name, dict(live)))
        if len(live) == 1:
            return self.switch_listener(name, next(iter(live)))
        port, tg = self.cloud.listeners[name]
        if tg not in live:
            tg = max(live, key=lambda k: live[k])
            self.cloud.listeners[name] = (port, tg)
        (other,) = (g for g in live if g != tg)
        share = max(1, min(99, round(100 * live[other] / sum(live.values()))))
        self.cloud.splits[name] = (other, share)
        return self.describe_listener(name)


class MemoryMetrics:
    """Error rate, latency, CPU and memory from the fault switches of the task definition
    serving a group; ``requests_per_period`` requests per period while the group has healthy
    tasks. ``fail_queries`` makes every query fail; ``silent`` makes the source answer with no
    datapoints (a collector that stopped)."""

    name: ClassVar[str] = "memory"
    capabilities: ClassVar[frozenset[str]] = frozenset({"percentiles"})

    def __init__(
        self,
        *,
        cloud: MemoryCloud,
        requests_per_period: int = 100,
        fail_queries: bool = False,
        silent: bool = False,
        base_cpu: float = 20.0,
        base_memory: float = 30.0,
        memory_mib: float = 512.0,
    ) -> None:
        self.cloud = cloud
        self.requests_per_period = requests_per_period
        self.fail_queries = fail_queries
        self.silent = silent
        self.base_cpu = base_cpu
        self.base_memory = base_memory
        self.memory_mib = memory_mib

    def query(self, query: MetricQuery) -> Measurement:
        if self.fail_queries:
            return Measurement(query=query, error="metrics backend unavailable (injected)")
        if self.silent:
            return Measurement(query=query)  # answers, but with no datapoint at all
        svc = self.cloud.service_for(query.scope)
        if svc is None:
            return Measurement(query=query)
        env = self.cloud.environment(svc)
        healthy = sum(1 for t in svc.tasks if self.cloud.is_healthy(t))
        n = self.requests_per_period if healthy else 0
        running = len(svc.tasks)
        values = {
            MetricName.ERROR_RATE: float(env.get("FAULT_ERROR_RATE", "0") or 0) * 100,
            MetricName.RESPONSE_TIME: float(env.get("FAULT_LATENCY_MS", "0") or 0) + 5.0,
            MetricName.HEALTHY_HOSTS: float(healthy),
            MetricName.REQUEST_COUNT: float(n),
            MetricName.HEALTH_CHECK_FAILURES: (
                100.0 * (running - healthy) / running if running else 0.0
            ),
            MetricName.CPU: float(env.get("FAULT_CPU", "") or self.base_cpu),
        }
        value = values.get(query.metric, 0.0)
        if query.statistic is Statistic.SUM and query.metric is MetricName.ERROR_RATE:
            value = value * n / 100
        per_request = query.metric in (MetricName.ERROR_RATE, MetricName.RESPONSE_TIME)
        samples = n if per_request or query.metric is MetricName.REQUEST_COUNT else running
        later = float(env.get("FAULT_DEGRADE_AFTER_S", "0") or 0)
        points = []
        t = query.start.timestamp()
        while t < query.end.timestamp():
            at = datetime.fromtimestamp(t, tz=query.start.tzinfo)
            shown = value
            if query.metric is MetricName.MEMORY:
                shown = self._memory(svc, env, at)
            elif later and per_request:
                base = 5.0 if query.metric is MetricName.RESPONSE_TIME else 0.0
                shown = self._degraded(svc, at, later, value, base)
            points.append(Datapoint(timestamp=at, value=shown, samples=samples))
            t += query.period_s
        return Measurement(query=query, datapoints=tuple(points))

    def _degraded(
        self, svc: _Service, at: datetime, after_s: float, faulty: float, healthy: float
    ) -> float:
        """A fault that begins ``after_s`` after each task started: the share of the tasks
        running at ``at`` that are that old get ``faulty``, the others the healthy value."""
        clock = self.cloud.clock
        mono_at = clock.monotonic() - (clock.now() - at).total_seconds()
        ages = [mono_at - t.started for t in svc.tasks if t.started <= mono_at]
        if not ages:
            return healthy
        share = sum(1 for a in ages if a >= after_s) / len(ages)
        return healthy + share * (faulty - healthy)

    def _memory(self, svc: _Service, env: Mapping[str, str], at: datetime) -> float:
        """Mean memory use at ``at`` of the service's tasks running then, in percent of
        ``memory_mib``: a base use plus ``FAULT_LEAK_MB_PER_S`` for every second a task has
        run (capped at 100 %)."""
        leak = float(env.get("FAULT_LEAK_MB_PER_S", "0") or 0)
        clock = self.cloud.clock
        mono_at = clock.monotonic() - (clock.now() - at).total_seconds()
        ages = [mono_at - t.started for t in svc.tasks if t.started <= mono_at]
        if not ages:
            return self.base_memory if svc.tasks else 0.0
        used = [min(100.0, self.base_memory + 100.0 * leak * a / self.memory_mib) for a in ages]
        return sum(used) / len(used)


class MemoryProber:
    """Answers like the service behind the listener a URL's port belongs to would."""

    def __init__(self, *, cloud: MemoryCloud) -> None:
        self.cloud = cloud
        self.requests: list[str] = []

    def get(self, url: str, *, timeout_s: float) -> ProbeResult:
        self.requests.append(url)
        port = int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        tg = next((tg for p, tg in self.cloud.listeners.values() if p == port), "")
        svc = self.cloud.service_for(tg)
        if svc is None or not any(self.cloud.is_healthy(t) for t in svc.tasks):
            return ProbeResult(url=url, status=503, elapsed_ms=1.0, body="no server available")
        env = self.cloud.environment(svc)
        if env.get("FAULT_HEALTH_FAIL") == "1" or float(env.get("FAULT_ERROR_RATE", 0) or 0) >= 1:
            return ProbeResult(url=url, status=500, elapsed_ms=1.0)
        return ProbeResult(url=url, status=200, elapsed_ms=1.0)


class MemoryNotifier:
    """A notification channel that keeps what it was sent (``sent``: one dict per message,
    ``action`` ``trigger`` or ``resolve``). ``down`` makes it fail like a channel that cannot
    be reached."""

    name: ClassVar[str] = "memory"

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.sent: list[dict[str, object]] = []

    def send(
        self,
        *,
        severity: str,
        title: str,
        text: str,
        dedup_key: str,
        fields: Mapping[str, str],
        kind: str = "",
    ) -> None:
        self._deliver("trigger", severity, title, text, dedup_key, fields, kind)

    def resolve(
        self,
        *,
        dedup_key: str,
        title: str,
        text: str = "",
        severity: str = "info",
        fields: Mapping[str, str] | None = None,
        kind: str = "",
    ) -> None:
        self._deliver("resolve", severity, title, text, dedup_key, fields or {}, kind)

    def _deliver(
        self,
        action: str,
        severity: str,
        title: str,
        text: str,
        dedup_key: str,
        fields: Mapping[str, str],
        kind: str,
    ) -> None:
        if self.down:
            raise DriverError("memory", action, "the channel cannot be reached (injected)")
        self.sent.append(
            {
                "action": action,
                "severity": severity,
                "title": title,
                "text": text,
                "dedup_key": dedup_key,
                "fields": dict(fields),
                "kind": kind,
            }
        )
