"""JSON forms of the domain dataclasses exchanged with the local daemon's API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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

__all__ = [
    "health_check_from",
    "health_check_to",
    "listener_from",
    "listener_to",
    "service_from",
    "service_to",
    "spec_from",
    "spec_to",
    "target_group_from",
    "target_group_to",
    "task_definition_from",
    "task_definition_to",
]


def health_check_to(hc: HealthCheck) -> dict[str, Any]:
    return {
        "path": hc.path,
        "interval_s": hc.interval_s,
        "timeout_s": hc.timeout_s,
        "healthy_threshold": hc.healthy_threshold,
        "unhealthy_threshold": hc.unhealthy_threshold,
        "expected_status": hc.expected_status,
    }


def health_check_from(d: dict[str, Any]) -> HealthCheck:
    return HealthCheck(
        path=str(d.get("path", "/health")),
        interval_s=float(d.get("interval_s", 5.0)),
        timeout_s=float(d.get("timeout_s", 2.0)),
        healthy_threshold=int(d.get("healthy_threshold", 2)),
        unhealthy_threshold=int(d.get("unhealthy_threshold", 3)),
        expected_status=int(d.get("expected_status", 200)),
    )


def spec_to(s: TaskDefinitionSpec) -> dict[str, Any]:
    return {
        "family": s.family,
        "version": s.version,
        "port": s.port,
        "command": list(s.command),
        "image": s.image,
        "environment": [list(kv) for kv in s.environment],
        "secrets": [list(kv) for kv in s.secrets],
        "health_check": health_check_to(s.health_check),
        "cpu": s.cpu,
        "memory": s.memory,
        "working_dir": s.working_dir,
    }


def _pairs(raw: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in raw or ())


def spec_from(d: dict[str, Any]) -> TaskDefinitionSpec:
    return TaskDefinitionSpec(
        family=str(d["family"]),
        version=str(d.get("version", "")),
        port=int(d.get("port", 0)),
        command=tuple(str(c) for c in d.get("command", ())),
        image=str(d.get("image", "")),
        environment=_pairs(d.get("environment")),
        secrets=_pairs(d.get("secrets")),
        health_check=health_check_from(d.get("health_check") or {}),
        cpu=int(d.get("cpu", 256)),
        memory=int(d.get("memory", 512)),
        working_dir=str(d.get("working_dir", "")),
    )


def task_definition_to(td: TaskDefinition) -> dict[str, Any]:
    return {"family": td.family, "revision": td.revision, "spec": spec_to(td.spec)}


def task_definition_from(d: dict[str, Any]) -> TaskDefinition:
    return TaskDefinition(
        family=str(d["family"]), revision=int(d["revision"]), spec=spec_from(d["spec"])
    )


def _task_to(t: TaskInfo) -> dict[str, Any]:
    return {
        "task_id": t.task_id,
        "state": t.state.value,
        "healthy": t.healthy,
        "port": t.port,
        "pid": t.pid,
        "task_definition": t.task_definition,
        "restarts": t.restarts,
        "started_at": t.started_at.isoformat() if t.started_at else None,
        "last_error": t.last_error,
    }


def _task_from(d: dict[str, Any]) -> TaskInfo:
    started = d.get("started_at")
    return TaskInfo(
        task_id=str(d["task_id"]),
        state=TaskState(d["state"]),
        healthy=bool(d["healthy"]),
        port=int(d.get("port", 0)),
        pid=int(d.get("pid", 0)),
        task_definition=str(d.get("task_definition", "")),
        restarts=int(d.get("restarts", 0)),
        started_at=datetime.fromisoformat(started) if started else None,
        last_error=str(d.get("last_error", "")),
    )


def service_to(s: ServiceState) -> dict[str, Any]:
    return {
        "name": s.name,
        "task_definition": s.task_definition,
        "desired": s.desired,
        "running": s.running,
        "healthy": s.healthy,
        "target_group": s.target_group,
        "tasks": [_task_to(t) for t in s.tasks],
    }


def service_from(d: dict[str, Any]) -> ServiceState:
    return ServiceState(
        name=str(d["name"]),
        task_definition=str(d["task_definition"]),
        desired=int(d["desired"]),
        running=int(d["running"]),
        healthy=int(d["healthy"]),
        target_group=str(d.get("target_group", "")),
        tasks=tuple(_task_from(t) for t in d.get("tasks", ())),
    )


def target_group_to(tg: TargetGroup) -> dict[str, Any]:
    return {
        "name": tg.name,
        "health_check": health_check_to(tg.health_check),
        "targets": [
            {
                "target_id": t.target_id,
                "address": t.address,
                "state": t.state.value,
                "reason": t.reason,
            }
            for t in tg.targets
        ],
    }


def target_group_from(d: dict[str, Any]) -> TargetGroup:
    return TargetGroup(
        name=str(d["name"]),
        health_check=health_check_from(d.get("health_check") or {}),
        targets=tuple(
            TargetHealth(
                target_id=str(t["target_id"]),
                address=str(t["address"]),
                state=TargetState(t["state"]),
                reason=str(t.get("reason", "")),
            )
            for t in d.get("targets", ())
        ),
    )


def listener_to(li: Listener) -> dict[str, Any]:
    return {"name": li.name, "port": li.port, "forwards": [list(f) for f in li.forwards]}


def listener_from(d: dict[str, Any]) -> Listener:
    return Listener(
        name=str(d["name"]),
        port=int(d["port"]),
        forwards=tuple((str(n), int(w)) for n, w in d.get("forwards", ())),
    )
