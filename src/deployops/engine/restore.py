"""Restores as operations (DR-2, DR-4): plans of frozen, idempotent steps, one handler per
step type, a journal that records each step's intent and outcome, and resume after a crash.

A database restore never touches the running primary until the restored instance is
verified: the plan is ::

    CheckRestorable -> RestoreDatabase -> VerifyDatabase -> PromoteDatabase
                    -> RepointApplication (rolling restart with the new DB_HOST / DB_PORT)

Until the generic operation runner exists this module carries its own small runner
(:class:`RecoveryRunner`): the journal is a JSON file per operation under
``.deployops/operations/``, the lock is the service's deploy lock in the state store. Plugging
the steps into the generic runner is registration: :data:`HANDLERS` maps step types to
handlers with one signature.

>>> plan = plan_db_restore(operation_id="rst-1", service="web", target=RestoreTarget(),
...                        instance_id="rst-1", repoint=True)
>>> [type(s).__name__ for s in plan.steps]  # doctest: +NORMALIZE_WHITESPACE
['CheckRestorable', 'RestoreDatabase', 'VerifyDatabase', 'PromoteDatabase',
 'RepointApplication']
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from deployops.clock import Clock
from deployops.domain.backup import RestoreTarget, recovery_window, target_time_problem
from deployops.domain.model import TaskState
from deployops.domain.names import prod_listener, target_group
from deployops.domain.plan import Plan, Step, register_step_type
from deployops.engine.operation import HandlerTable, OperationKind, StepContext
from deployops.engine.poll import wait_until
from deployops.errors import BackupError, ConfigError, DeployopsError
from deployops.ports import Compute, Prober
from deployops.ports.recovery import BackupRepo, Database

__all__ = [
    "HANDLERS",
    "RESTORE_KIND",
    "CheckRestorable",
    "PromoteDatabase",
    "RecoveryContext",
    "RecoveryPlan",
    "RecoveryRunner",
    "RepointApplication",
    "RestoreAppData",
    "RestoreDatabase",
    "VerifyDatabase",
    "as_runner_plan",
    "plan_app_data_restore",
    "plan_db_restore",
    "runner_handlers",
]


# ------------------------------------------------------------------------------ steps
@register_step_type
@dataclass(frozen=True, slots=True)
class CheckRestorable(Step):
    phase: ClassVar[str] = "prepare"
    """The target is inside the recovery window (after forcing the WAL out)."""

    to_time: str = ""  # ISO 8601; empty for a backup id or the newest point
    backup_id: str = ""


@register_step_type
@dataclass(frozen=True, slots=True)
class RestoreDatabase(Step):
    phase: ClassVar[str] = "restore"
    instance_id: str
    to_time: str = ""
    backup_id: str = ""
    scratch: bool = False


@register_step_type
@dataclass(frozen=True, slots=True)
class VerifyDatabase(Step):
    phase: ClassVar[str] = "verify"
    """The restored instance answers and the application's tables read back."""

    instance_id: str


@register_step_type
@dataclass(frozen=True, slots=True)
class PromoteDatabase(Step):
    phase: ClassVar[str] = "switch"
    instance_id: str


@register_step_type
@dataclass(frozen=True, slots=True)
class RepointApplication(Step):
    phase: ClassVar[str] = "switch"
    """Roll the service's replicas onto the instance (new ``DB_HOST`` / ``DB_PORT``)."""

    service: str
    instance_id: str
    timeout_s: float = 300.0


@register_step_type
@dataclass(frozen=True, slots=True)
class RestoreAppData(Step):
    phase: ClassVar[str] = "restore"
    snapshot_id: str
    target_dir: str


RestoreStep = (
    CheckRestorable
    | RestoreDatabase
    | VerifyDatabase
    | PromoteDatabase
    | RepointApplication
    | RestoreAppData
)
_STEP_TYPES: dict[str, type[Any]] = {
    c.__name__: c
    for c in (
        CheckRestorable,
        RestoreDatabase,
        VerifyDatabase,
        PromoteDatabase,
        RepointApplication,
        RestoreAppData,
    )
}


@dataclass(frozen=True, slots=True)
class RecoveryPlan:
    """An operation: its id, kind (``restore-db``, ``restore-app-data``), the service it
    repoints (its lock), and the steps with every setting frozen in."""

    operation_id: str
    kind: str
    service: str
    steps: tuple[RestoreStep, ...]
    reason: str = ""


def _target_fields(target: RestoreTarget) -> dict[str, str]:
    return {
        "to_time": target.to_time.isoformat() if target.to_time else "",
        "backup_id": target.backup_id or "",
    }


def plan_db_restore(
    *,
    operation_id: str,
    service: str,
    target: RestoreTarget,
    instance_id: str,
    repoint: bool,
    repoint_timeout_s: float = 300.0,
    reason: str = "",
) -> RecoveryPlan:
    """DR-2 / DR-4: restore into a new instance, verify, promote, repoint."""
    tf = _target_fields(target)
    steps: list[RestoreStep] = [
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
    return RecoveryPlan(
        operation_id=operation_id,
        kind="restore-db",
        service=service,
        steps=tuple(steps),
        reason=reason,
    )


def plan_app_data_restore(
    *, operation_id: str, service: str, snapshot_id: str, target_dir: Path, reason: str = ""
) -> RecoveryPlan:
    return RecoveryPlan(
        operation_id=operation_id,
        kind="restore-app-data",
        service=service,
        steps=(RestoreAppData(snapshot_id=snapshot_id, target_dir=str(target_dir)),),
        reason=reason,
    )


# --------------------------------------------------------------------------- handlers
@dataclass
class RecoveryContext:
    """What handlers act through: ports and the clock."""

    clock: Clock
    database: Database | None = None
    backup_repo: BackupRepo | None = None
    compute: Compute | None = None
    prober: Prober | None = None
    progress: Callable[[str], None] = field(default=lambda _m: None)
    # service -> the ECS/local service name that runs it now (blue or green colour)
    live_service: Callable[[str], str] = field(default=lambda s: s)


def _target(step: CheckRestorable | RestoreDatabase) -> RestoreTarget:
    return RestoreTarget(
        to_time=datetime.fromisoformat(step.to_time) if step.to_time else None,
        backup_id=step.backup_id or None,
    )


def _db(ctx: RecoveryContext) -> Database:
    if ctx.database is None:
        raise ConfigError("this platform has no database driver", path="backups.database")
    return ctx.database


def _check_restorable(ctx: RecoveryContext, step: CheckRestorable) -> dict[str, Any]:
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
        return {"latest": window.latest}
    problem = target_time_problem(target.to_time, window, now=ctx.clock.now())
    if problem:
        raise BackupError(
            f"cannot restore to that time: {problem}",
            hint="pick a time shown by: deployops backup list",
        )
    return {"earliest": window.earliest, "latest": window.latest}


def _restore_db(ctx: RecoveryContext, step: RestoreDatabase) -> dict[str, Any]:
    ctx.progress(f"restoring the database into new instance {step.instance_id}")
    inst = _db(ctx).restore(step.instance_id, _target(step), scratch=step.scratch)
    return {"instance": inst.id, "host": inst.host, "port": inst.port}


def _verify_db(ctx: RecoveryContext, step: VerifyDatabase) -> dict[str, Any]:
    facts = _db(ctx).inspect(step.instance_id)
    if not facts.get("accepting_writes"):
        raise BackupError(f"restored instance {step.instance_id} does not accept writes")
    return facts


def _promote_db(ctx: RecoveryContext, step: PromoteDatabase) -> dict[str, Any]:
    inst = _db(ctx).promote(step.instance_id)
    return {"primary": inst.id, "host": inst.host, "port": inst.port}


def _repoint(ctx: RecoveryContext, step: RepointApplication) -> dict[str, Any]:
    if ctx.compute is None:
        raise ConfigError("this platform has no compute driver", path="platform")
    compute = ctx.compute
    inst = next(i for i in _db(ctx).instances() if i.id == step.instance_id)
    name = ctx.live_service(step.service)
    svc = compute.describe_service(name)
    if svc is None:
        return {"skipped": f"{name} is not running: nothing to repoint"}
    td = compute.describe_task_definition(svc.task_definition)
    env = dict(td.spec.environment)
    env["DB_HOST"], env["DB_PORT"] = inst.host, str(inst.port)
    spec = td.spec.__class__(
        **{
            **{f.name: getattr(td.spec, f.name) for f in fields(td.spec)},
            "environment": tuple(sorted(env.items())),
        }
    )
    new = compute.register_task_definition(spec)
    ctx.progress(f"rolling {name} onto {inst.host}:{inst.port} ({new.ref})")
    compute.update_service(name, task_definition=new.ref)
    desired = svc.desired

    def check() -> tuple[bool, str]:
        st = compute.describe_service(name)
        if st is None:
            return False, f"{name} disappeared"
        fresh = [t for t in st.tasks if t.task_definition == new.ref and t.healthy]
        old = [t for t in st.tasks if t.task_definition != new.ref and t.state != TaskState.STOPPED]
        return (
            len(fresh) >= desired and not old,
            f"{len(fresh)}/{desired} replicas on the new database, {len(old)} old left",
        )

    note = wait_until(
        ctx.clock,
        check,
        timeout_s=step.timeout_s,
        interval_s=0.25,
        what=f"rolling restart of {name}",
        on_progress=lambda n, _left: ctx.progress(n),
    )
    return {"service": name, "task_definition": new.ref, "note": note}


def _restore_app_data(ctx: RecoveryContext, step: RestoreAppData) -> dict[str, Any]:
    if ctx.backup_repo is None:
        raise ConfigError("no application-data repository", path="backups.app_data")
    ctx.progress(f"restoring application data snapshot {step.snapshot_id}")
    ctx.backup_repo.restore(step.snapshot_id, Path(step.target_dir))
    return {"target_dir": step.target_dir}


Handler = Callable[[RecoveryContext, Any], dict[str, Any]]
HANDLERS: dict[type[Any], Handler] = {
    CheckRestorable: _check_restorable,
    RestoreDatabase: _restore_db,
    VerifyDatabase: _verify_db,
    PromoteDatabase: _promote_db,
    RepointApplication: _repoint,
    RestoreAppData: _restore_app_data,
}


# ----------------------------------------------------------------------------- runner
def _encode(plan: RecoveryPlan) -> dict[str, Any]:
    return {
        "operation_id": plan.operation_id,
        "kind": plan.kind,
        "service": plan.service,
        "reason": plan.reason,
        "steps": [{"type": type(s).__name__, **asdict(s)} for s in plan.steps],
    }


def _decode(doc: Mapping[str, Any]) -> RecoveryPlan:
    steps = []
    for raw in doc["steps"]:
        data = dict(raw)
        cls = _STEP_TYPES[data.pop("type")]
        steps.append(cls(**data))
    return RecoveryPlan(
        operation_id=str(doc["operation_id"]),
        kind=str(doc["kind"]),
        service=str(doc["service"]),
        steps=tuple(steps),
        reason=str(doc.get("reason", "")),
    )


class RecoveryRunner:
    """Runs a :class:`RecoveryPlan` step by step under the service's lock, journalling intent
    and outcome to ``<journal_dir>/<operation id>.json``; :meth:`resume` continues a killed
    run at its first unfinished step (every step is idempotent)."""

    def __init__(
        self,
        *,
        ctx: RecoveryContext,
        journal_dir: Path,
        acquire: Callable[[RecoveryPlan], None],
        release: Callable[[RecoveryPlan], None],
        record: Callable[[RecoveryPlan, str, dict[str, Any]], None] = lambda _p, _k, _d: None,
    ) -> None:
        self.ctx = ctx
        self.journal_dir = journal_dir
        self._acquire = acquire
        self._release = release
        self._record = record

    def journal_path(self, operation_id: str) -> Path:
        return self.journal_dir / f"{operation_id}.json"

    def load(self, operation_id: str) -> dict[str, Any]:
        try:
            doc = json.loads(self.journal_path(operation_id).read_text())
        except (OSError, ValueError):
            raise ConfigError(
                f"no recovery operation {operation_id!r}",
                path="operation",
                hint=f"the journals are in {self.journal_dir}",
            ) from None
        return dict(doc)

    def _save(self, doc: dict[str, Any]) -> None:
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        path = self.journal_path(str(doc["plan"]["operation_id"]))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2, default=str))
        tmp.replace(path)

    def run(self, plan: RecoveryPlan) -> dict[str, Any]:
        doc = {
            "plan": _encode(plan),
            "status": "running",
            "started_at": self.ctx.clock.now().isoformat(),
            "results": [None] * len(plan.steps),
            "intents": [None] * len(plan.steps),
        }
        self._save(doc)
        return self._execute(plan, doc)

    def resume(self, operation_id: str) -> dict[str, Any]:
        doc = self.load(operation_id)
        if doc["status"] == "succeeded":
            return doc
        return self._execute(_decode(doc["plan"]), doc)

    def _execute(self, plan: RecoveryPlan, doc: dict[str, Any]) -> dict[str, Any]:
        self._acquire(plan)
        try:
            doc["status"] = "running"
            for i, step in enumerate(plan.steps):
                if doc["results"][i] is not None:
                    continue
                doc["intents"][i] = self.ctx.clock.now().isoformat()
                self._save(doc)
                self._record(plan, f"step.{type(step).__name__}.started", asdict(step))
                try:
                    result = HANDLERS[type(step)](self.ctx, step)
                except DeployopsError as exc:
                    doc["status"] = "failed"
                    doc["error"] = exc.message
                    doc["failed_step"] = type(step).__name__
                    self._save(doc)
                    self._record(
                        plan, "failed", {"step": type(step).__name__, "error": exc.message}
                    )
                    raise
                doc["results"][i] = {"at": self.ctx.clock.now().isoformat(), **result}
                self._save(doc)
                self._record(plan, f"step.{type(step).__name__}.done", result)
            doc["status"] = "succeeded"
            doc["finished_at"] = self.ctx.clock.now().isoformat()
            self._save(doc)
            self._record(plan, "succeeded", {})
            return doc
        finally:
            self._release(plan)


# ------------------------------------------------------------- the generic operation runner
RESTORE_KIND = OperationKind(name="restore", id_prefix="rst")


def as_runner_plan(plan: RecoveryPlan) -> Plan:
    """The same steps as a :class:`~deployops.domain.plan.Plan` for the generic runner
    (``Runner.start(NewOperation(kind=RESTORE_KIND, target=plan.service, ...))``: the lock
    covers the service, so no deploy runs while its database is being replaced)."""
    return Plan(
        strategy=plan.kind,
        steps=plan.steps,
        target_group="",
        previous_target_group="",
        settings={"reason": plan.reason, "service": plan.service},
    )


def _context(ctx: StepContext) -> RecoveryContext:
    ports = ctx.ports

    def optional(kind: type[Any]) -> Any:
        try:
            return ports.get(kind)
        except DeployopsError:
            return None

    def live(service: str) -> str:
        listener = ports.traffic.describe_listener(prod_listener(service))
        return listener.target_group or target_group(service, "blue")

    return RecoveryContext(
        clock=ctx.clock,
        database=optional(Database),
        backup_repo=optional(BackupRepo),
        compute=ports.compute,
        prober=ports.prober,
        progress=lambda message: ctx.progress(message, 0.0),
        live_service=live,
    )


def runner_handlers() -> HandlerTable:
    """One handler per step type for the generic runner: each adapts :data:`HANDLERS` to the
    runner's ``(step, StepContext)`` signature, reaching ``Database`` / ``BackupRepo`` through
    ``Ports(extra={Database: ..., BackupRepo: ...})``."""
    table = HandlerTable()
    for step_type, handler in HANDLERS.items():

        def run(step: Any, ctx: StepContext, _h: Handler = handler) -> dict[str, Any]:
            return _h(_context(ctx), step)

        table.register(step_type, run)
    return table
