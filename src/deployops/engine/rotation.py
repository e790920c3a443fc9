"""Secret rotation as an operation kind (SEC-3): run by the one runner, locked, each step's
intent and outcome stored, resumable with ``deployops resume``.

A rotation is planned as frozen steps (:mod:`deployops.domain.rotation`) and run by
:class:`~deployops.engine.runner.Runner` under the lock ``ENV/secret:NAME``, as an operation
of kind :data:`ROTATE` (ids ``rot-…``; ``deployops deployments list --kind rotate`` lists
them). Each step type has one implementation in :data:`Rotator.handlers`, reached through the
runner's :data:`ROTATION_HANDLERS`. A failed step has the runner store and run the revert steps
(:func:`deployops.domain.rotation.plan_revert`), so a rotation killed while putting things back
is finished by ``resume`` too. The ``rotations`` table keeps the rotation's record under the
operation's id (status, versions, the steps done): what ``secrets status`` reads. The store's
labels guarantee there is always exactly one current value: a crash leaves either the old value
current (before :class:`Promote`, or after :class:`RevertPromote`) or the new one.

>>> # wiring.build_rotator(project, env, ...).rotate(managed_secret, actor="alice")
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from deployops.clock import Clock
from deployops.domain.model import TaskDefinitionSpec
from deployops.domain.names import lock_key, service_of
from deployops.domain.plan import Plan, Step, step_from_json
from deployops.domain.rotation import (
    REVERT_STEP_TYPES,
    STEP_TYPES,
    CreatePending,
    DiscardPending,
    MoveReplicasBack,
    Promote,
    RestartReplicas,
    RevertPromote,
    RevertTarget,
    RotationStep,
    SetOnTarget,
    TestPending,
    VerifyCurrent,
    VerifyRestored,
    plan_revert,
    plan_rotation,
)
from deployops.domain.secrets import (
    ManagedSecret,
    SecretKind,
    SecretStatus,
    Stage,
    secret_status,
)
from deployops.engine.events import Notice, Notify, Reporter
from deployops.engine.operation import (
    Env,
    HandlerTable,
    NewOperation,
    OperationKind,
    Ports,
    StepContext,
)
from deployops.engine.runner import Runner
from deployops.engine.secret_values import check_value, new_value
from deployops.errors import (
    DeployopsError,
    LockHeldError,
    NotFoundError,
    RotationError,
    UnsupportedError,
)
from deployops.ports import Compute, CredentialTarget, Metrics, Prober, RotatingSecretStore, Traffic
from deployops.secret import Secret
from deployops.store import (
    AuditRecord,
    EventRecord,
    OperationRecord,
    RotationRecord,
    StateStore,
)

__all__ = [
    "ROTATE",
    "ROTATION_HANDLERS",
    "ROTATION_KINDS",
    "Rotator",
    "marker_key",
    "rotation_lock_key",
    "rotation_target",
    "services_using",
]


def rotation_target(secret: str) -> str:
    """``secret:NAME``: what a rotation operation changes (its lock is ``ENV/secret:NAME``)."""
    return f"secret:{secret}"


def rotation_lock_key(environment: str, secret: str) -> str:
    """``ENV/secret:NAME``: the runner's lock of a rotation's target."""
    return lock_key(environment, rotation_target(secret))


def marker_key(secret: str) -> str:
    """The plain environment variable that records which version a task was started with
    (a version id, never a value); changing it is what forces replicas onto a new value."""
    return "SECRET_VERSION_" + "".join(c if c.isalnum() else "_" for c in secret).upper()


def _uses(spec: TaskDefinitionSpec, secret: str) -> bool:
    for _key, ref in spec.secrets:
        name = ref.removeprefix("secret://").partition("#")[0]
        if name == secret:
            return True
    return False


def services_using(compute: Compute, secret: str) -> list[str]:
    """Running services whose task definition reads ``secret``."""
    out: list[str] = []
    for name in compute.list_services():
        state = compute.describe_service(name)
        if state is None or state.desired <= 0:
            continue
        td = compute.describe_task_definition(state.task_definition)
        if _uses(td.spec, secret):
            out.append(name)
    return out


# ------------------------------------------------------------------ the operation kind
def _first(ctx: StepContext) -> CreatePending:
    first = ctx.plan.steps[0]
    if not isinstance(first, CreatePending):
        raise RotationError(f"{ctx.op.id} is not a rotation plan")
    return first


def _ensure_record(ctx: StepContext) -> RotationRecord:
    """The rotation's row in ``rotations`` (keyed by the operation's id), written with the
    first step that runs."""
    rec = ctx.store.get_rotation(ctx.op.id)
    if rec is not None:
        return rec
    first = _first(ctx)
    rec = RotationRecord(
        id=ctx.op.id,
        environment=ctx.op.environment,
        secret=first.secret,
        kind=first.secret_kind.value,
        status="running",
        version_id=first.version_id,
        previous_version_id=first.current_version_id,
        owner=ctx.op.owner,
        actor=str(ctx.op.detail.get("actor", "")),
        plan=ctx.plan.to_json(),
        started_at=ctx.op.created_at,
    )
    ctx.store.create_rotation(rec)
    return rec


def _run_step(step: Step, ctx: StepContext) -> dict[str, Any]:
    """The runner's handler of every rotation step: the rotator's implementation of the step
    type, then the step noted in the rotation's record. Results name versions, never values."""
    rot = ctx.ports.get(Rotator)
    rec = _ensure_record(ctx)
    assert isinstance(step, RotationStep)
    rot.operation_id = ctx.op.id
    rot.progress(f"{step.key}: {step.secret}")
    result = rot.handlers[type(step)](rot, step)
    done = [*rec.done_steps, step.key] if step.key not in rec.done_steps else rec.done_steps
    ctx.store.update_rotation(ctx.op.id, done_steps=list(done), owner=ctx.op.owner)
    return dict(result) if isinstance(result, Mapping) else {}


def _plan_revert(ctx: StepContext, failed: int, _exc: DeployopsError) -> Sequence[Step]:
    return plan_revert(ctx.plan.steps, failed=failed)


def _actor(ctx: StepContext) -> tuple[str, str]:
    return str(ctx.op.detail.get("actor", "")), str(ctx.op.detail.get("source", ""))


def _audit(ctx: StepContext, outcome: str, error: str = "") -> None:
    first = _first(ctx)
    actor, source = _actor(ctx)
    ctx.store.audit(
        AuditRecord(
            ts=ctx.clock.now(),
            actor=actor,
            action="secret.rotate",
            target=f"{ctx.op.environment}/{first.secret}",
            source=source,
            outcome=outcome,
            detail={"rotation": ctx.op.id, "version": first.version_id, "error": error},
        )
    )


def _rotation_succeeded(ctx: StepContext) -> None:
    first = _first(ctx)
    _ensure_record(ctx)
    now = ctx.clock.now()
    ctx.store.update_rotation(ctx.op.id, status="completed", error="", finished_at=now)
    ctx.event("rotation.completed", f"{first.secret} rotated (version {first.version_id[:8]})")
    _audit(ctx, "ok")


def _rotation_failed(ctx: StepContext, step: Step, exc: DeployopsError) -> OperationRecord:
    """After the revert steps: the rotation is recorded as put back (exit 1). A revert step
    that failed leaves the operation running for ``resume`` (the store may be down)."""
    first = _first(ctx)
    _ensure_record(ctx)
    now = ctx.clock.now()
    name = first.secret
    if ctx.state.get("revert_failed"):
        why = f"putting {name} back failed at {step.kind}: {exc.message}"
        ctx.store.update_operation(ctx.op.id, error=why, updated_at=now)
        ctx.store.update_rotation(ctx.op.id, error=why)
        ctx.event(
            "rotation.revert_failed",
            f"{why}; resume it with `deployops resume {ctx.op.id}`",
            level="critical",
        )
        _audit(ctx, "failed", why)
        ctx.send(
            Notice(
                severity="critical",
                kind="rotation.revert_failed",
                title=f"rotation of {name} in {ctx.op.environment} is half done",
                text=f"{why}; `deployops resume {ctx.op.id}` finishes putting it back",
                dedup_key=ctx.op.id,
                fields={"operation": ctx.op.id, "failed_step": step.kind},
            )
        )
        raise RotationError(
            f"rotating {name} failed and putting it back failed too: {exc.message}",
            hint=f"`deployops resume {ctx.op.id}` once the store is reachable "
            "(docs/runbooks/secret-rotation.md)",
        )
    why = f"{step.kind}: {exc.message}"
    ctx.store.update_operation(
        ctx.op.id, status="rolled_back", error=why, updated_at=now, finished_at=now
    )
    ctx.store.update_rotation(ctx.op.id, status="reverted", error=why, finished_at=now)
    ctx.event(
        "rotation.reverted", f"rotating {name} failed at {why}; the previous value is current"
    )
    _audit(ctx, "failed", why)
    ctx.send(
        Notice(
            severity="warning",
            kind="rotation.failed",
            title=f"rotation of {name} in {ctx.op.environment} failed and was put back",
            text=why,
            dedup_key=ctx.op.id,
            fields={"operation": ctx.op.id, "failed_step": step.kind},
        )
    )
    raise RotationError(
        f"rotating {name} failed at {step.kind}: {exc.message}; the previous value is current "
        "again",
        hint=exc.hint or "see docs/runbooks/secret-rotation.md",
    )


def _describe(op: OperationRecord) -> str:
    return f"rotating {op.target.removeprefix('secret:')} started"


ROTATE = OperationKind(
    name="rotate",
    id_prefix="rot",
    events="rotation",
    on_failure=_rotation_failed,
    on_success=_rotation_succeeded,
    revert=_plan_revert,
    describe=_describe,
)
ROTATION_KINDS = {ROTATE.name: ROTATE}

ROTATION_HANDLERS = HandlerTable()
for _type in (*STEP_TYPES.values(), *REVERT_STEP_TYPES.values()):
    ROTATION_HANDLERS.register(_type, _run_step)


class _Absent:
    """A platform port a rotation was built without (the platform is not reachable): a step
    that needs it says so."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise UnsupportedError(
            f"the platform's {self._what} is not reachable from this rotation",
            hint="start the platform (`deployops local up`) and resume the rotation",
        )


@dataclass
class Rotator:
    """The front door of rotations for the CLI, the controller and tests: plans, then runs
    the plan as a :data:`ROTATE` operation on the runner."""

    environment: str
    store: StateStore
    secrets: RotatingSecretStore
    clock: Clock
    owner: str
    compute: Compute | None = None
    targets: Mapping[str, CredentialTarget] = field(default_factory=dict)
    settings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    progress: Callable[[str], None] = lambda _m: None
    new_version_id: Callable[[], str] = lambda: str(uuid.uuid4())
    poll_s: float = 0.5
    restart_timeout_s: float = 300.0
    notify: Notify | None = None
    reporter: Reporter | None = None
    # the reliability suite's fault point (wiring.crash_point_from_environment)
    crash_point: Callable[[str, int, str], None] | None = None
    operation_id: str = ""  # the operation whose step runs now (set by the runner's handler)

    # ------------------------------------------------------------------ planning
    def plan(self, secret: ManagedSecret) -> list[RotationStep]:
        try:
            info = self.secrets.describe(secret.name)
            current = info.current.version_id if info.current else ""
            previous = info.previous.version_id if info.previous else ""
        except NotFoundError:
            current = previous = ""
        services = services_using(self.compute, secret.name) if self.compute else []
        for base in sorted({_owner_service(s) for s in services}):
            held = self.store.get_lock(lock_key(self.environment, base))
            if held is not None:
                raise LockHeldError(
                    held.key,
                    held.owner,
                    held.reason,
                    held.acquired_at.isoformat(timespec="seconds"),
                    (self.clock.now() - held.acquired_at).total_seconds(),
                )
        return plan_rotation(
            name=secret.name,
            kind=secret.kind,
            version_id=self.new_version_id(),
            current_version_id=current,
            previous_version_id=previous,
            services=services,
            settings=self.settings.get(secret.name, {}),
            restart_timeout_s=self.restart_timeout_s,
        )

    # ------------------------------------------------------------------ running
    def runner(self) -> Runner:
        """The operation runner over this rotator's store, clock and platform."""

        def report(event: EventRecord) -> None:
            if self.reporter is not None:
                self.reporter(event)

        ports = Ports(
            compute=self.compute if self.compute is not None else cast(Compute, _Absent("compute")),
            traffic=cast(Traffic, _Absent("traffic")),
            metrics=cast(Metrics, _Absent("metrics")),
            prober=cast(Prober, _Absent("prober")),
            extra={Rotator: self},
        )
        env = Env(
            ports=ports,
            store=self.store,
            clock=self.clock,
            reporter=report,
            notify=self.notify,
            crash_point=self.crash_point,
        )
        return Runner(env=env, handlers=ROTATION_HANDLERS)

    def rotate(self, secret: ManagedSecret, *, actor: str, source: str = "") -> RotationRecord:
        """Plan and run a rotation of ``secret``. Raises :class:`RotationError` (exit 1) when
        a step failed and everything was put back; ``LockHeldError`` (3) when locked."""
        runner = self.runner()
        target = rotation_target(secret.name)
        try:
            steps = self.plan(secret)
        except LockHeldError as exc:
            runner.refuse(
                ROTATE,
                environment=self.environment,
                target=target,
                what=f"rotate {secret.name}",
                error=exc,
            )
            raise
        first = steps[0]
        assert isinstance(first, CreatePending)
        plan = Plan(
            strategy="rotate",
            steps=tuple(steps),
            target_group="",
            previous_target_group="",
            settings={"secret": secret.name, "secret_kind": secret.kind.value},
        )
        op = runner.start(
            NewOperation(
                kind=ROTATE,
                environment=self.environment,
                target=target,
                owner=self.owner,
                plan=plan,
                summary=f"rotate {secret.name}",
                detail={
                    "secret": secret.name,
                    "actor": actor,
                    "source": source,
                    "version": first.version_id,
                    "previous_version": first.current_version_id,
                },
            )
        )
        return self._record(op.id)

    def resume(
        self, rotation_id: str, *, actor: str, owner_alive: Callable[[str], bool]
    ) -> RotationRecord:
        """Continue an interrupted rotation (or its revert) from its first unfinished step.
        A rotation that has ended is returned as it is."""
        op = self.store.find_operation(rotation_id, kinds=tuple(ROTATION_KINDS))
        if op is None:
            op = _adopt_legacy(self.store, self.clock, rotation_id)
        if op is None:
            raise NotFoundError(
                f"no rotation {rotation_id!r}",
                path="rotation",
                hint="`deployops secrets status` lists rotations still running",
            )
        if op.status != "running":
            return self._record(op.id)
        self.store.update_operation(op.id, detail={"actor": actor, "source": ""})
        done = self.runner().resume(
            op.id, kinds=ROTATION_KINDS, owner=self.owner, owner_alive=owner_alive
        )
        return self._record(done.id)

    def _record(self, op_id: str) -> RotationRecord:
        rec = self.store.get_rotation(op_id)
        if rec is None:  # killed before its first step: nothing was changed
            raise NotFoundError(f"no rotation record for {op_id}", path="rotation")
        return rec

    # ------------------------------------------------------------------ step handlers
    def _create_pending(self, step: RotationStep) -> None:
        assert isinstance(step, CreatePending)
        try:
            self.secrets.get_version(step.secret, version_id=step.version_id)
            return  # created before a crash: keep it (idempotent)
        except NotFoundError:
            pass
        current = self._value(step.secret, step.current_version_id)
        value = new_value(
            step.secret_kind,
            current=current,
            settings=dict(step.settings),
            now=self.clock.now(),
            version_id=step.version_id,
        )
        self.secrets.put_pending(step.secret, value, version_id=step.version_id)

    def _set_on_target(self, step: RotationStep) -> None:
        target = self.targets.get(step.secret)
        if target is None:
            return  # application keys: the value takes effect when replicas restart
        doc = _json(self.secrets.get_version(step.secret, version_id=step.version_id))
        target.set_password(str(doc["username"]), Secret(str(doc["password"])))

    def _test_pending(self, step: RotationStep) -> None:
        assert isinstance(step, TestPending)
        pending = self.secrets.get_version(step.secret, version_id=step.version_id)
        current = self._value(step.secret, step.current_version_id)
        check_value(step.secret_kind, pending, current=current)
        target = self.targets.get(step.secret)
        if target is not None:
            doc = _json(pending)
            target.check_login(str(doc["username"]), Secret(str(doc["password"])))

    def _promote(self, step: RotationStep) -> None:
        self.secrets.promote(step.secret, step.version_id)

    def _restart_step(self, step: RotationStep) -> None:
        assert isinstance(step, RestartReplicas)
        _restart(self, step)

    def _verify(self, step: RotationStep) -> None:
        assert isinstance(step, VerifyCurrent)
        current = self.secrets.get_version(step.secret, stage=Stage.CURRENT)
        info = self.secrets.describe(step.secret)
        if info.current is None or info.current.version_id != step.version_id:
            raise RotationError(f"{step.secret}: the new version is not current")
        target = self.targets.get(step.secret)
        if target is not None:
            doc = _json(current)
            target.check_login(str(doc["username"]), Secret(str(doc["password"])))
        if self.compute is not None:
            marker = marker_key(step.secret)
            for name in step.services:
                state = self.compute.describe_service(name)
                td = self.compute.describe_task_definition(state.task_definition) if state else None
                if td is None or dict(td.spec.environment).get(marker) != step.version_id:
                    raise RotationError(f"{name} does not run on the new value")

    # ------------------------------------------------------------------ putting back
    def _revert_promote(self, step: RotationStep) -> None:
        assert isinstance(step, RevertPromote)
        info = self.secrets.describe(step.secret)
        if info.current is None or info.current.version_id != step.current_version_id:
            self.secrets.promote(step.secret, step.current_version_id)

    def _revert_target(self, step: RotationStep) -> None:
        assert isinstance(step, RevertTarget)
        first = CreatePending(
            secret=step.secret,
            secret_kind=step.secret_kind,
            version_id=step.version_id,
            previous_version_id=step.previous_version_id,
        )
        _restore_target(self.secrets, self.targets.get(step.secret), first)

    def _discard_pending(self, step: RotationStep) -> None:
        assert isinstance(step, DiscardPending)
        self.secrets.discard_pending(step.secret, step.version_id)

    def _verify_restored(self, step: RotationStep) -> None:
        assert isinstance(step, VerifyRestored)
        info = self.secrets.describe(step.secret)
        if info.current is None or info.current.version_id != step.version_id:
            raise RotationError(f"{step.secret}: the value from before is not current")
        target = self.targets.get(step.secret)
        if target is not None:
            doc = _json(self.secrets.get_version(step.secret, version_id=step.version_id))
            target.check_login(str(doc["username"]), Secret(str(doc["password"])))

    handlers: Mapping[type[RotationStep], Callable[[Rotator, RotationStep], object]] = field(
        default_factory=lambda: {
            CreatePending: Rotator._create_pending,
            SetOnTarget: Rotator._set_on_target,
            TestPending: Rotator._test_pending,
            Promote: Rotator._promote,
            RestartReplicas: Rotator._restart_step,
            VerifyCurrent: Rotator._verify,
            RevertPromote: Rotator._revert_promote,
            MoveReplicasBack: Rotator._restart_step,
            RevertTarget: Rotator._revert_target,
            DiscardPending: Rotator._discard_pending,
            VerifyRestored: Rotator._verify_restored,
        }
    )

    # ------------------------------------------------------------------ schedule
    def statuses(self, managed: Sequence[ManagedSecret]) -> list[SecretStatus]:
        """Each managed secret's due date on this rotator's clock (never a value)."""
        now = self.clock.now()
        rows = []
        for secret in managed:
            done = [
                r
                for r in self.store.rotations(environment=self.environment, secret=secret.name)
                if r.status == "completed"
            ]
            info, problem = None, ""
            try:
                info = self.secrets.describe(secret.name)
            except DeployopsError as exc:
                problem = "" if isinstance(exc, NotFoundError) else exc.message
            rows.append(
                secret_status(
                    secret,
                    store=self.secrets.name,
                    info=info,
                    last_rotated=done[0].finished_at if done else None,
                    now=now,
                    problem=problem,
                )
            )
        return rows

    def rotate_due(
        self,
        managed: Sequence[ManagedSecret],
        *,
        actor: str = "controller",
        owner_alive: Callable[[str], bool] = lambda _o: True,
    ) -> list[RotationRecord]:
        """Finish interrupted rotations, then rotate every secret that is due. A failure is
        recorded (event, audit) and the next secret is still tried."""
        out: list[RotationRecord] = []
        running = {
            op.id: op.target
            for op in self.store.list_operations(
                kinds=tuple(ROTATION_KINDS),
                environment=self.environment,
                status=["running"],
                limit=100,
            )
        }
        for rec in self.store.rotations(environment=self.environment, status="running"):
            running.setdefault(rec.id, rotation_target(rec.secret))  # started by an older version
        for op_id, target in running.items():
            held = self.store.get_lock(lock_key(self.environment, target))
            if held is not None and owner_alive(held.owner) and self.store.lock_holder_alive(held):
                continue
            try:
                out.append(self.resume(op_id, actor=actor, owner_alive=owner_alive))
            except DeployopsError:
                continue  # recorded by the rotation itself
        by_name = {s.name: s for s in managed}
        for row in self.statuses(managed):
            if not row.due or row.problem:
                continue
            try:
                out.append(self.rotate(by_name[row.name], actor=actor))
            except DeployopsError:
                continue
        return out

    # ------------------------------------------------------------------ helpers
    def _value(self, secret: str, version_id: str) -> Secret | None:
        if not version_id:
            return None
        try:
            return self.secrets.get_version(secret, version_id=version_id)
        except NotFoundError:
            return None


def _restart(rot: Rotator, step: RestartReplicas) -> None:
    """Move the replicas of the step's services onto ``step.version_id`` under their deploy
    locks (a deploy and a restart never overlap)."""
    if rot.compute is None or not step.services:
        return
    bases = sorted({_owner_service(s) for s in step.services})
    locked: list[str] = []
    try:
        for base in bases:
            key = lock_key(rot.environment, base)
            _lock_service(rot, key, step)
            locked.append(key)
        refs = {name: _roll(rot, name, step) for name in step.services}
        _wait_moved(rot, refs, step.timeout_s)
    finally:
        for key in locked:
            rot.store.release_lock(key, owner=rot.owner)


def _lock_service(rot: Rotator, key: str, step: RestartReplicas) -> None:
    """Take a service's deploy lock for the restart; one this rotation's dead process
    left (killed mid-restart) is taken over, anyone else's stands."""
    reason = f"restart for {step.secret}"
    try:
        rot.store.acquire_lock(
            key,
            owner=rot.owner,
            reason=reason,
            now=rot.clock.now(),
            deployment_id=rot.operation_id or None,
        )
    except LockHeldError:
        held = rot.store.get_lock(key)
        mine = held is not None and bool(rot.operation_id)
        if not mine or held is None or held.deployment_id != rot.operation_id:
            raise
        if held.owner != rot.owner and rot.store.lock_holder_alive(held):
            raise
        rot.store.transfer_lock(key, new_owner=rot.owner)


def _roll(rot: Rotator, service: str, step: RestartReplicas) -> str:
    """Start ``service`` on a new task definition revision that records the version; the
    platform replaces tasks rolling (never below 100 % healthy). Idempotent."""
    assert rot.compute is not None
    state = rot.compute.describe_service(service)
    if state is None:
        raise RotationError(f"service {service} is gone")
    td = rot.compute.describe_task_definition(state.task_definition)
    marker = marker_key(step.secret)
    env = dict(td.spec.environment)
    if env.get(marker) == step.version_id:
        return td.ref
    env[marker] = step.version_id
    spec = dataclasses.replace(td.spec, environment=tuple(sorted(env.items())))
    new = rot.compute.register_task_definition(spec)
    rot.compute.update_service(service, task_definition=new.ref)
    rot.progress(f"  {service}: replacing tasks with {new.ref}")
    return new.ref


def _wait_moved(rot: Rotator, refs: Mapping[str, str], timeout_s: float) -> None:
    assert rot.compute is not None
    deadline = rot.clock.monotonic() + timeout_s
    waiting = dict(refs)
    while waiting:
        for name, ref in list(waiting.items()):
            state = rot.compute.describe_service(name)
            if state is None:
                raise RotationError(f"service {name} is gone")
            live = [t for t in state.tasks if t.state.value != "STOPPED"]
            if (
                state.task_definition == ref
                and live
                and all(t.task_definition == ref and t.healthy for t in live)
                and state.healthy >= state.desired
            ):
                del waiting[name]
        if not waiting:
            return
        if rot.clock.monotonic() >= deadline:
            raise RotationError(
                f"replicas of {', '.join(waiting)} did not all move to the new value within "
                f"{timeout_s:g}s",
                hint="`deployops deployments list` and the service's task logs show why",
            )
        rot.clock.sleep(rot.poll_s)


def _adopt_legacy(store: StateStore, clock: Clock, rotation_id: str) -> OperationRecord | None:
    """A rotation left running by a version that kept its steps in ``rotations`` only:
    recorded as an operation with its done steps, so the runner resumes it."""
    rec = store.get_rotation(rotation_id)
    if rec is None or rec.status != "running":
        return None
    steps = []
    for d in rec.plan:
        data = {k: v for k, v in d.items() if k not in ("type", "kind")}
        data["step"] = d.get("type") or d.get("step")
        data["secret_kind"] = d.get("secret_kind") or d.get("kind")
        steps.append(step_from_json(data))
    plan = Plan(strategy="rotate", steps=tuple(steps), target_group="", previous_target_group="")
    now = clock.now()
    op = OperationRecord(
        id=rec.id,
        kind=ROTATE.name,
        environment=rec.environment,
        target=rotation_target(rec.secret),
        status="running",
        created_at=rec.started_at,
        updated_at=now,
        owner=rec.owner,
        plan=plan.to_record(),
        detail={"secret": rec.secret, "actor": rec.actor, "version": rec.version_id},
    )
    store.create_operation(op)
    for seq, step in enumerate(steps):
        if step.kind not in rec.done_steps:
            break
        store.record_step_intent(
            op.id, seq, step.kind, phase=step.phase, params=step.to_json(), now=now
        )
        store.record_step_outcome(op.id, seq, status="succeeded", now=now)
    store.update_rotation(rec.id, plan=plan.to_json())
    return op


def _restore_target(
    secrets: RotatingSecretStore, target: CredentialTarget | None, first: CreatePending
) -> None:
    """Give the role the pending value was set on its password from before the rotation."""
    if target is None or first.secret_kind is not SecretKind.DATABASE_PASSWORD:
        return
    try:
        pending = _json(secrets.get_version(first.secret, version_id=first.version_id))
    except NotFoundError:
        return
    user = str(pending.get("username", ""))
    restored: Secret | None = None
    if first.previous_version_id:
        old = _json(secrets.get_version(first.secret, version_id=first.previous_version_id))
        if old.get("username") == user:
            restored = Secret(str(old["password"]))
    # a role with no earlier password gets one nobody knows: it stays unusable
    target.set_password(user, restored or Secret(uuid.uuid4().hex + uuid.uuid4().hex))


def _owner_service(compute_service: str) -> str:
    """``web-blue`` -> ``web``: the deployops service whose deploy lock covers it."""
    return service_of(compute_service)


def _json(value: Secret) -> dict[str, Any]:
    import json

    try:
        doc = json.loads(value.reveal())
    except ValueError:
        raise RotationError("the secret's value is not the JSON its kind needs") from None
    if not isinstance(doc, dict):
        raise RotationError("the secret's value is not the JSON its kind needs")
    return doc
