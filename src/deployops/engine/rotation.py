"""Runs secret rotations (SEC-3): locked, step by step, intent and outcome stored, resumable.

A rotation is planned as frozen steps (:mod:`deployops.domain.rotation`) and each step type
has one handler in :data:`Rotator.handlers`. The rotation's row records the plan and the steps
done, so ``resume`` (or the controller) continues a rotation killed mid-way from its first
unfinished step. The store's labels guarantee there is always exactly one current value: a
crash leaves either the old value current (before :class:`Promote`) or the new one.

>>> # wiring.build_rotator(project, env, ...).rotate("database-password", actor="alice")
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deployops.clock import Clock
from deployops.domain.model import TaskDefinitionSpec
from deployops.domain.names import lock_key, service_of
from deployops.domain.rotation import (
    CreatePending,
    Promote,
    RestartReplicas,
    RotationStep,
    SetOnTarget,
    TestPending,
    VerifyCurrent,
    plan_rotation,
    step_from_dict,
    step_to_dict,
)
from deployops.domain.secrets import (
    ManagedSecret,
    SecretKind,
    SecretStatus,
    Stage,
    secret_status,
)
from deployops.engine.secret_values import check_value, new_value
from deployops.errors import DeployopsError, NotFoundError, RotationError
from deployops.ports import Compute, CredentialTarget, RotatingSecretStore
from deployops.secret import Secret
from deployops.store import AuditRecord, EventRecord, RotationRecord, StateStore

__all__ = ["Rotator", "marker_key", "rotation_lock_key", "services_using"]


def rotation_lock_key(environment: str, secret: str) -> str:
    """``ENV/secret:NAME``: the runner's lock of a rotation's target."""
    return lock_key(environment, f"secret:{secret}")


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


@dataclass
class _Run:
    rec: RotationRecord
    plan: list[RotationStep]
    done: list[str]


@dataclass
class Rotator:
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
                from deployops.errors import LockHeldError

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
    def rotate(self, secret: ManagedSecret, *, actor: str, source: str = "") -> RotationRecord:
        key = rotation_lock_key(self.environment, secret.name)
        now = self.clock.now()
        rid = f"rot-{now.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
        self.store.acquire_lock(key, owner=self.owner, reason=f"rotate {secret.name}", now=now)
        try:
            plan = self.plan(secret)
            rec = RotationRecord(
                id=rid,
                environment=self.environment,
                secret=secret.name,
                kind=secret.kind.value,
                status="running",
                version_id=plan[0].version_id,
                previous_version_id=_current_of(plan),
                owner=self.owner,
                actor=actor,
                plan=[step_to_dict(s) for s in plan],
                started_at=now,
            )
            self.store.create_rotation(rec)
            self._event(rec, "rotation.started", f"rotating {secret.name}")
            return self._execute(_Run(rec=rec, plan=plan, done=[]), actor=actor, source=source)
        finally:
            self.store.release_lock(key, owner=self.owner)

    def resume(
        self, rotation_id: str, *, actor: str, owner_alive: Callable[[str], bool]
    ) -> RotationRecord:
        rec = self.store.get_rotation(rotation_id)
        if rec is None:
            raise NotFoundError(
                f"no rotation {rotation_id!r}",
                path="rotation",
                hint="`deployops secrets status` lists rotations still running",
            )
        if rec.status != "running":
            return rec
        key = rotation_lock_key(self.environment, rec.secret)
        held = self.store.get_lock(key)
        if held is not None and held.owner != self.owner:
            if owner_alive(held.owner):
                self.store.acquire_lock(
                    key, owner=self.owner, reason="resume", now=self.clock.now()
                )
            self.store.transfer_lock(key, new_owner=self.owner)
        elif held is None:
            self.store.acquire_lock(
                key, owner=self.owner, reason=f"resume {rec.secret}", now=self.clock.now()
            )
        try:
            self.store.update_rotation(rec.id, owner=self.owner)
            plan = [step_from_dict(d) for d in rec.plan]
            self._event(rec, "rotation.resumed", f"resuming the rotation of {rec.secret}")
            return self._execute(
                _Run(rec=rec, plan=plan, done=list(rec.done_steps)), actor=actor, source=""
            )
        finally:
            self.store.release_lock(key, owner=self.owner)

    def _execute(self, run: _Run, *, actor: str, source: str) -> RotationRecord:
        promoted = Promote.__name__ in run.done
        for step in run.plan:
            if step.key in run.done:
                continue
            self.progress(f"{step.key}: {run.rec.secret}")
            try:
                self.handlers[type(step)](self, step)
            except DeployopsError as exc:
                why = exc.message
                self._event(run.rec, "rotation.step_failed", f"{step.key} failed: {why}", "error")
                self._revert(run, promoted=promoted or isinstance(step, Promote), failed=step)
                final = self._finish(run.rec, "reverted", error=f"{step.key}: {why}")
                self._audit(final, actor, source, "failed")
                raise RotationError(
                    f"rotating {run.rec.secret} failed at {step.key}: {why}; the previous value "
                    "is current again",
                    hint=exc.hint or "see docs/runbooks/secret-rotation.md",
                ) from None
            run.done.append(step.key)
            promoted = promoted or isinstance(step, Promote)
            self.store.update_rotation(run.rec.id, done_steps=list(run.done))
        final = self._finish(run.rec, "completed")
        self._event(final, "rotation.completed", f"{run.rec.secret} rotated")
        self._audit(final, actor, source, "ok")
        return final

    def _revert(self, run: _Run, *, promoted: bool, failed: RotationStep) -> None:
        """Put everything back: before promotion discard the pending value and restore the
        target; after it make the old value current again and move the replicas back."""
        first = run.plan[0]
        assert isinstance(first, CreatePending)
        name, vid = first.secret, first.version_id
        try:
            if promoted and first.current_version_id:
                self.secrets.promote(name, first.current_version_id)
                restart = next((s for s in run.plan if isinstance(s, RestartReplicas)), None)
                if restart is not None and restart.services:
                    self._restart(dataclasses.replace(restart, version_id=first.current_version_id))
            if SetOnTarget.__name__ in run.done or isinstance(failed, SetOnTarget):
                _restore_target(self.secrets, self.targets.get(first.secret), first)
            self.secrets.discard_pending(name, vid)
        except DeployopsError as exc:
            self._event(
                run.rec,
                "rotation.revert_failed",
                f"putting {name} back failed: {exc.message}; resume it with "
                "`deployops secrets resume`",
                "critical",
            )
            raise RotationError(
                f"rotating {name} failed and putting it back failed too: {exc.message}",
                hint=f"`deployops secrets resume {run.rec.id}` once the store is reachable "
                "(docs/runbooks/secret-rotation.md)",
            ) from None

    def _finish(self, rec: RotationRecord, status: str, *, error: str = "") -> RotationRecord:
        now = self.clock.now()
        self.store.update_rotation(rec.id, status=status, error=error, finished_at=now)
        return dataclasses.replace(rec, status=status, error=error, finished_at=now)

    def _event(self, rec: RotationRecord, kind: str, message: str, level: str = "info") -> None:
        self.store.add_event(
            EventRecord(
                ts=self.clock.now(),
                kind=kind,
                level=level,
                message=message,
                data={"rotation": rec.id, "secret": rec.secret, "environment": self.environment},
            )
        )

    def _audit(self, rec: RotationRecord, actor: str, source: str, outcome: str) -> None:
        self.store.audit(
            AuditRecord(
                ts=self.clock.now(),
                actor=actor,
                action="secret.rotate",
                target=f"{self.environment}/{rec.secret}",
                source=source,
                outcome=outcome,
                detail={"rotation": rec.id, "version": rec.version_id, "error": rec.error},
            )
        )

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
            step.kind,
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
        check_value(step.kind, pending, current=self._value(step.secret, step.current_version_id))
        target = self.targets.get(step.secret)
        if target is not None:
            doc = _json(pending)
            target.check_login(str(doc["username"]), Secret(str(doc["password"])))

    def _promote(self, step: RotationStep) -> None:
        self.secrets.promote(step.secret, step.version_id)

    def _restart_step(self, step: RotationStep) -> None:
        assert isinstance(step, RestartReplicas)
        self._restart(step)

    def _restart(self, step: RestartReplicas) -> None:
        if self.compute is None or not step.services:
            return
        bases = sorted({_owner_service(s) for s in step.services})
        locked: list[str] = []
        try:
            for base in bases:
                key = lock_key(self.environment, base)
                self.store.acquire_lock(
                    key, owner=self.owner, reason=f"restart for {step.secret}", now=self.clock.now()
                )
                locked.append(key)
            refs = {name: self._roll(name, step) for name in step.services}
            self._wait_moved(refs, step.timeout_s)
        finally:
            for key in locked:
                self.store.release_lock(key, owner=self.owner)

    def _roll(self, service: str, step: RestartReplicas) -> str:
        """Start ``service`` on a new task definition revision that records the version; the
        platform replaces tasks rolling (never below 100 % healthy). Idempotent."""
        assert self.compute is not None
        state = self.compute.describe_service(service)
        if state is None:
            raise RotationError(f"service {service} is gone")
        td = self.compute.describe_task_definition(state.task_definition)
        marker = marker_key(step.secret)
        env = dict(td.spec.environment)
        if env.get(marker) == step.version_id:
            return td.ref
        env[marker] = step.version_id
        spec = dataclasses.replace(td.spec, environment=tuple(sorted(env.items())))
        new = self.compute.register_task_definition(spec)
        self.compute.update_service(service, task_definition=new.ref)
        self.progress(f"  {service}: replacing tasks with {new.ref}")
        return new.ref

    def _wait_moved(self, refs: Mapping[str, str], timeout_s: float) -> None:
        assert self.compute is not None
        deadline = self.clock.monotonic() + timeout_s
        waiting = dict(refs)
        while waiting:
            for name, ref in list(waiting.items()):
                state = self.compute.describe_service(name)
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
            if self.clock.monotonic() >= deadline:
                raise RotationError(
                    f"replicas of {', '.join(waiting)} did not all move to the new value within "
                    f"{timeout_s:g}s",
                    hint="`deployops deployments list` and the service's task logs show why",
                )
            self.clock.sleep(self.poll_s)

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

    handlers: Mapping[type[RotationStep], Callable[[Rotator, RotationStep], None]] = field(
        default_factory=lambda: {
            CreatePending: Rotator._create_pending,
            SetOnTarget: Rotator._set_on_target,
            TestPending: Rotator._test_pending,
            Promote: Rotator._promote,
            RestartReplicas: Rotator._restart_step,
            VerifyCurrent: Rotator._verify,
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
        for rec in self.store.rotations(environment=self.environment, status="running"):
            held = self.store.get_lock(rotation_lock_key(self.environment, rec.secret))
            if held is not None and owner_alive(held.owner):
                continue
            try:
                out.append(self.resume(rec.id, actor=actor, owner_alive=owner_alive))
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


def _restore_target(
    secrets: RotatingSecretStore, target: CredentialTarget | None, first: CreatePending
) -> None:
    """Give the role the pending value was set on its password from before the rotation."""
    if target is None or first.kind is not SecretKind.DATABASE_PASSWORD:
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


def _current_of(plan: Sequence[RotationStep]) -> str:
    first = plan[0]
    return first.current_version_id if isinstance(first, CreatePending) else ""


def _json(value: Secret) -> dict[str, Any]:
    import json

    try:
        doc = json.loads(value.reveal())
    except ValueError:
        raise RotationError("the secret's value is not the JSON its kind needs") from None
    if not isinstance(doc, dict):
        raise RotationError("the secret's value is not the JSON its kind needs")
    return doc
