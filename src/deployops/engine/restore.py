"""Restores as operations of the one runner (DR-2, DR-4): plans of frozen, idempotent steps
and one handler per step type, run by :class:`deployops.engine.runner.Runner` like every
other kind (locked, stored step by step, resumed with ``deployops resume``).

A database restore never touches the running primary until the restored instance is
verified: the plan is ::

    CheckRestorable -> RestoreDatabase -> VerifyDatabase -> PromoteDatabase
                    -> RepointApplication (rolling restart with the new DB_HOST / DB_PORT)

Handlers reach the database and the backup repository through ``ctx.ports.get(Database)``
and ``ctx.ports.get(BackupRepo)`` (``wiring.build_runner(..., extra_ports=...)``).

>>> plan = plan_db_restore(service="web", target=RestoreTarget(), instance_id="rst-1",
...                        repoint=True)
>>> [s.kind for s in plan.steps]  # doctest: +NORMALIZE_WHITESPACE
['CheckRestorable', 'RestoreDatabase', 'VerifyDatabase', 'PromoteDatabase',
 'RepointApplication']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from deployops.clock import Clock
from deployops.domain.backup import RestoreTarget, recovery_window, target_time_problem
from deployops.domain.model import TaskState
from deployops.domain.names import database_state_key, prod_listener, target_group
from deployops.domain.plan import Plan, Step, register_step_type
from deployops.engine.operation import HandlerTable, OperationKind, StepContext
from deployops.engine.poll import wait_until
from deployops.errors import BackupError, ConfigError, DeployopsError
from deployops.ports.recovery import BackupRepo, Database, DatabaseEndpoints
from deployops.store import StateStore

__all__ = [
    "HANDLERS",
    "RECOVERY_KINDS",
    "RESTORE_KIND",
    "CheckRestorable",
    "ConfigHistoryPort",
    "PromoteDatabase",
    "RepointApplication",
    "RestoreAppData",
    "RestoreConfig",
    "RestoreDatabase",
    "StoredDatabaseEndpoints",
    "VerifyDatabase",
    "plan_app_data_restore",
    "plan_config_restore",
    "plan_db_restore",
    "roll_service",
]


# ------------------------------------------------------------------------------ steps
@register_step_type
@dataclass(frozen=True, slots=True)
class CheckRestorable(Step):
    """The target is inside the recovery window (after forcing the WAL out)."""

    phase: ClassVar[str] = "prepare"
    to_time: str = ""  # ISO 8601; empty for a backup id or the newest point
    backup_id: str = ""

    def describe(self) -> str:
        return f"check that {self.to_time or self.backup_id or 'the newest point'} is restorable"


@register_step_type
@dataclass(frozen=True, slots=True)
class RestoreDatabase(Step):
    phase: ClassVar[str] = "restore"
    instance_id: str
    to_time: str = ""
    backup_id: str = ""
    scratch: bool = False

    def describe(self) -> str:
        return f"restore the database into new instance {self.instance_id}"


@register_step_type
@dataclass(frozen=True, slots=True)
class VerifyDatabase(Step):
    """The restored instance answers and the application's tables read back."""

    phase: ClassVar[str] = "verify"
    instance_id: str

    def describe(self) -> str:
        return f"verify instance {self.instance_id}"


@register_step_type
@dataclass(frozen=True, slots=True)
class PromoteDatabase(Step):
    phase: ClassVar[str] = "switch"
    instance_id: str

    def describe(self) -> str:
        return f"make {self.instance_id} the primary"


@register_step_type
@dataclass(frozen=True, slots=True)
class RepointApplication(Step):
    """Roll the service's replicas onto the instance (new ``DB_HOST`` / ``DB_PORT``) and
    keep the endpoint as the environment's database, which the next deploy plans with."""

    phase: ClassVar[str] = "switch"
    service: str
    instance_id: str
    timeout_s: float = 300.0

    def describe(self) -> str:
        return f"roll {self.service} onto {self.instance_id}"


@register_step_type
@dataclass(frozen=True, slots=True)
class RestoreAppData(Step):
    phase: ClassVar[str] = "restore"
    snapshot_id: str
    target_dir: str

    def describe(self) -> str:
        return f"restore application data {self.snapshot_id} into {self.target_dir}"


@register_step_type
@dataclass(frozen=True, slots=True)
class RestoreConfig(Step):
    """Put back deployops.yaml and config/ as recorded at ``at`` (the current files are
    recorded first, so this is undone by restoring the moment before)."""

    phase: ClassVar[str] = "restore"
    at: str  # ISO 8601

    def describe(self) -> str:
        return f"restore the configuration of {self.at}"


# ------------------------------------------------------------------------------ ports
@runtime_checkable
class ConfigHistoryPort(Protocol):
    """The configuration's history (``drivers/local/confighistory.py``)."""

    def restore(self, at: datetime) -> tuple[Any, list[Path]]: ...


class StoredDatabaseEndpoints:
    """:class:`~deployops.ports.recovery.DatabaseEndpoints` kept in the state store
    (``environment_state``, key ``database/<service>``)."""

    def __init__(self, *, store: StateStore, environment: str, clock: Clock) -> None:
        self.store = store
        self.environment = environment
        self.clock = clock

    def set_database_endpoint(self, service: str, *, host: str, port: int, source: str) -> None:
        self.store.set_environment_state(
            self.environment,
            database_state_key(service),
            {"host": host, "port": int(port)},
            source=source,
            now=self.clock.now(),
        )

    def database_endpoint(self, service: str) -> tuple[str, int] | None:
        doc = self.store.environment_state(self.environment, database_state_key(service))
        if not doc:
            return None
        return str(doc["host"]), int(doc["port"])


# ------------------------------------------------------------------------------ planners
def _target_fields(target: RestoreTarget) -> dict[str, str]:
    return {
        "to_time": target.to_time.isoformat() if target.to_time else "",
        "backup_id": target.backup_id or "",
    }


def db_restore_steps(
    *,
    service: str,
    target: RestoreTarget | None,
    instance_id: str,
    repoint: bool,
    repoint_timeout_s: float = 300.0,
    to_time_from: str = "",
) -> tuple[Step, ...]:
    """The steps of a database restore; ``to_time_from`` (``@failure_at``) takes the target
    time from an earlier step's result (a drill restores to just before its bad write)."""
    tf = _target_fields(target or RestoreTarget())
    if to_time_from:
        tf["to_time"] = to_time_from
    steps: list[Step] = [
        CheckRestorable(**tf),
        RestoreDatabase(instance_id=instance_id, to_time=tf["to_time"], backup_id=tf["backup_id"]),
        VerifyDatabase(instance_id=instance_id),
    ]
    if repoint:
        steps += [
            PromoteDatabase(instance_id=instance_id),
            RepointApplication(
                service=service, instance_id=instance_id, timeout_s=repoint_timeout_s
            ),
        ]
    return tuple(steps)


def _plan(strategy: str, steps: tuple[Step, ...], *, service: str, reason: str) -> Plan:
    return Plan(
        strategy=strategy,
        steps=steps,
        target_group="",
        previous_target_group="",
        settings={"reason": reason, "service": service},
    )


def plan_db_restore(
    *,
    service: str,
    target: RestoreTarget,
    instance_id: str,
    repoint: bool,
    repoint_timeout_s: float = 300.0,
    reason: str = "",
) -> Plan:
    """DR-2 / DR-4: restore into a new instance, verify, promote, repoint."""
    steps = db_restore_steps(
        service=service,
        target=target,
        instance_id=instance_id,
        repoint=repoint,
        repoint_timeout_s=repoint_timeout_s,
    )
    return _plan("restore-db", steps, service=service, reason=reason)


def plan_app_data_restore(
    *, service: str, snapshot_id: str, target_dir: Path, reason: str = ""
) -> Plan:
    steps = (RestoreAppData(snapshot_id=snapshot_id, target_dir=str(target_dir)),)
    return _plan("restore-app-data", steps, service=service, reason=reason)


def plan_config_restore(*, at: datetime, reason: str = "") -> Plan:
    steps = (RestoreConfig(at=at.isoformat()),)
    return _plan("restore-config", steps, service="", reason=reason)


# --------------------------------------------------------------------------- handlers
def _optional(ctx: StepContext, kind: type[Any]) -> Any:
    try:
        return ctx.ports.get(kind)
    except DeployopsError:
        return None


def _db(ctx: StepContext) -> Database:
    db = _optional(ctx, Database)
    if db is None:
        raise ConfigError("this platform has no database driver", path="backups.database")
    return db  # type: ignore[no-any-return]


def _say(ctx: StepContext, message: str) -> None:
    ctx.progress(message, 0.0)


def _target(step: CheckRestorable | RestoreDatabase) -> RestoreTarget:
    return RestoreTarget(
        to_time=datetime.fromisoformat(step.to_time) if step.to_time else None,
        backup_id=step.backup_id or None,
    )


def check_restorable(step: CheckRestorable, ctx: StepContext) -> dict[str, Any]:
    db = _db(ctx)
    target = _target(step)
    points = list(db.backups())
    if target.backup_id is not None:
        if target.backup_id not in {p.id for p in points}:
            raise BackupError(
                f"no database backup {target.backup_id!r}",
                hint="list the backups with: deployops backup list",
            )
        return {"backup_id": target.backup_id}
    archived = db.archived_until()  # pitfall: the target's WAL must be archived first
    window = recovery_window(points, archived_until=archived)
    if target.to_time is None:
        if window.empty:
            raise BackupError(
                "there is no database backup to restore from",
                hint="take one with: deployops backup run --target database",
            )
        return {"latest": _iso(window.latest)}
    problem = target_time_problem(target.to_time, window, now=ctx.clock.now())
    if problem:
        raise BackupError(
            f"cannot restore to that time: {problem}",
            hint="pick a time shown by: deployops backup list",
        )
    return {"earliest": _iso(window.earliest), "latest": _iso(window.latest)}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def restore_database(step: RestoreDatabase, ctx: StepContext) -> dict[str, Any]:
    _say(ctx, f"restoring the database into new instance {step.instance_id}")
    inst = _db(ctx).restore(step.instance_id, _target(step), scratch=step.scratch)
    return {"instance": inst.id, "host": inst.host, "port": inst.port}


def verify_database(step: VerifyDatabase, ctx: StepContext) -> dict[str, Any]:
    facts = _db(ctx).inspect(step.instance_id)
    if not facts.get("accepting_writes"):
        raise BackupError(f"restored instance {step.instance_id} does not accept writes")
    return {"verified": step.instance_id, **{k: _plain(v) for k, v in facts.items()}}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def promote_database(step: PromoteDatabase, ctx: StepContext) -> dict[str, Any]:
    inst = _db(ctx).promote(step.instance_id)
    return {"primary": inst.id, "host": inst.host, "port": inst.port}


def _live_service(ctx: StepContext, service: str) -> str:
    """The service name running ``service`` now (its live blue or green colour)."""
    listener = ctx.ports.traffic.describe_listener(prod_listener(service))
    return listener.target_group or target_group(service, "blue")


def repoint_application(step: RepointApplication, ctx: StepContext) -> dict[str, Any]:
    inst = next((i for i in _db(ctx).instances() if i.id == step.instance_id), None)
    if inst is None:
        raise BackupError(f"database instance {step.instance_id} does not exist")
    endpoints = _optional(ctx, DatabaseEndpoints)
    if endpoints is not None:
        # Recorded before the replicas move: a deploy planned from now on (or this step
        # resumed) uses the new database, never the one in deployops.yaml.
        endpoints.set_database_endpoint(
            step.service, host=inst.host, port=inst.port, source=ctx.op.id
        )
    return roll_service(
        ctx,
        step.service,
        {"DB_HOST": inst.host, "DB_PORT": str(inst.port)},
        timeout_s=step.timeout_s,
    )


def roll_service(
    ctx: StepContext, service: str, changes: dict[str, str], *, timeout_s: float
) -> dict[str, Any]:
    """Roll the live colour of ``service`` onto a new revision with ``changes`` in its
    environment (one replica at a time behind the load balancer) and wait until every
    replica runs it. Idempotent: a revision that has them already is rolled on."""
    compute = ctx.ports.compute
    name = _live_service(ctx, service)
    svc = compute.describe_service(name)
    if svc is None:
        return {"skipped": f"{name} is not running: nothing to roll"}
    td = compute.describe_task_definition(svc.task_definition)
    env = dict(td.spec.environment)
    if all(env.get(k) == v for k, v in changes.items()):
        new_ref = svc.task_definition  # already registered (a resumed step): roll on
    else:
        env.update(changes)
        spec = td.spec.__class__(
            **{
                **{f.name: getattr(td.spec, f.name) for f in fields(td.spec)},
                "environment": tuple(sorted(env.items())),
            }
        )
        new_ref = compute.register_task_definition(spec).ref
        _say(ctx, f"rolling {name} onto {new_ref} ({', '.join(sorted(changes))})")
        compute.update_service(name, task_definition=new_ref)
    desired = svc.desired

    def check() -> tuple[bool, str]:
        st = compute.describe_service(name)
        if st is None:
            return False, f"{name} disappeared"
        fresh = [t for t in st.tasks if t.task_definition == new_ref and t.healthy]
        old = [t for t in st.tasks if t.task_definition != new_ref and t.state != TaskState.STOPPED]
        return (
            len(fresh) >= desired and not old,
            f"{len(fresh)}/{desired} replicas on the new revision, {len(old)} old left",
        )

    note = wait_until(
        ctx.clock,
        check,
        timeout_s=timeout_s,
        interval_s=0.25,
        what=f"rolling restart of {name}",
        on_progress=lambda n, _left: _say(ctx, n),
    )
    return {"service": name, "task_definition": new_ref, "note": note}


def restore_app_data(step: RestoreAppData, ctx: StepContext) -> dict[str, Any]:
    repo = _optional(ctx, BackupRepo)
    if repo is None:
        raise ConfigError("no application-data repository", path="backups.app_data")
    _say(ctx, f"restoring application data snapshot {step.snapshot_id}")
    repo.restore(step.snapshot_id, Path(step.target_dir))
    return {"target_dir": step.target_dir}


def restore_config(step: RestoreConfig, ctx: StepContext) -> dict[str, Any]:
    history = _optional(ctx, ConfigHistoryPort)
    if history is None:
        raise ConfigError("no configuration history here", path="backups.config")
    version, written = history.restore(datetime.fromisoformat(step.at))
    return {
        "restored": version.commit[:12],
        "recorded_at": version.at.isoformat(),
        "files": [str(p) for p in written],
    }


HANDLERS = HandlerTable()
_HANDLER_FUNCS: tuple[tuple[type[Step], Callable[[Any, StepContext], dict[str, Any]]], ...] = (
    (CheckRestorable, check_restorable),
    (RestoreDatabase, restore_database),
    (VerifyDatabase, verify_database),
    (PromoteDatabase, promote_database),
    (RepointApplication, repoint_application),
    (RestoreAppData, restore_app_data),
    (RestoreConfig, restore_config),
)
for _type, _handler in _HANDLER_FUNCS:
    HANDLERS.register(_type, _handler)


# ------------------------------------------------------------------------------ the kind
def _describe(op: Any) -> str:
    reason = op.plan.get("settings", {}).get("reason", "")
    what = op.plan.get("strategy", "restore")
    return f"{what} {op.id}" + (f": {reason}" if reason else "")


RESTORE_KIND = OperationKind(name="restore", id_prefix="rst", describe=_describe)
# The recovery kinds `deployops resume` and the listings know (drills add theirs).
RECOVERY_KINDS: dict[str, OperationKind] = {RESTORE_KIND.name: RESTORE_KIND}
