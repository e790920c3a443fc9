"""The state store over SQLAlchemy Core."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Select,
    Table,
    and_,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import RowMapping, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError

from deployops.errors import ConfigError, DriverError, LockHeldError, NotFoundError
from deployops.store import schema as t
from deployops.store.locks import Holder, current_holder, holder_alive
from deployops.store.records import (
    DEPLOYMENT_KINDS,
    AlarmHistoryRecord,
    AlarmStateRecord,
    AuditRecord,
    ChecklistEntry,
    DecisionRecord,
    DeploymentRecord,
    EventRecord,
    JobRecord,
    JudgementRecord,
    LeaseInfo,
    LockInfo,
    MeasurementRecord,
    MetricSample,
    OperationRecord,
    PendingNotice,
    RotationRecord,
    ScalingActivity,
    StepRecord,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "DEFAULT_RECONNECT_S",
    "HEAD_REVISION",
    "StateStore",
    "audit_fields",
    "lock_held_error",
]

# How long a transaction waits for an unreachable PostgreSQL state store (``state.reconnect``).
DEFAULT_RECONNECT_S = 30.0

log = logging.getLogger(__name__)

# The newest migration in migrations/versions; the store migrates when the database is behind.
HEAD_REVISION = "0013"

_MIGRATIONS = Path(__file__).parent / "migrations"


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything in deployops is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _one_line(text: str) -> str:
    """Driver messages (psycopg's span lines) as one line for the CLI."""
    return " ".join(text.split())


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


_R = TypeVar("_R", bound="DataclassInstance")

_DEPLOYMENT_DETAIL_FIELDS = frozenset(
    {
        "version",
        "strategy",
        "task_definition",
        "target_group",
        "previous_version",
        "previous_task_definition",
        "previous_target_group",
    }
)

# The record fields stored as JSON text; every other field is stored as it is.
_JSON_FIELDS: dict[type[Any], frozenset[str]] = {
    OperationRecord: frozenset({"plan", "detail"}),
    StepRecord: frozenset({"params", "result"}),
    EventRecord: frozenset({"data"}),
    DecisionRecord: frozenset({"evidence"}),
    AuditRecord: frozenset({"detail"}),
    JobRecord: frozenset({"payload"}),
    RotationRecord: frozenset({"plan", "done_steps"}),
    AlarmHistoryRecord: frozenset({"evidence"}),
    ChecklistEntry: frozenset({"evidence"}),
    MeasurementRecord: frozenset({"stats"}),
    JudgementRecord: frozenset({"detail"}),
    PendingNotice: frozenset({"notice"}),
}


def _record(cls: type[_R], row: RowMapping) -> _R:
    """A row as a record: JSON fields decoded, datetimes made UTC-aware."""
    decode = _JSON_FIELDS.get(cls, frozenset())
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = row[f.name]
        if f.name in decode:
            value = json.loads(value)
        elif isinstance(value, datetime):
            value = _aware(value)
        values[f.name] = value
    return cls(**values)


def _judgement(row: RowMapping) -> JudgementRecord:
    rec = _record(JudgementRecord, row)
    return dataclasses.replace(rec, held=bool(rec.held))


def audit_fields(
    entry_id: int,
    ts: datetime,
    actor: str,
    action: str,
    target: str,
    detail: dict[str, Any],
    source: str,
    outcome: str,
) -> dict[str, Any]:
    """What an audit entry's hash covers (migration 0004 chains old entries with this too)."""
    when = _aware(ts)
    assert when is not None
    return {
        "id": entry_id,
        "ts": when.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "target": target,
        "detail": detail,
        "source": source,
        "outcome": outcome,
    }


def _audit_fields_of(entry_id: int, rec: AuditRecord) -> dict[str, Any]:
    return audit_fields(
        entry_id, rec.ts, rec.actor, rec.action, rec.target, rec.detail, rec.source, rec.outcome
    )


def _values(rec: DataclassInstance, *, exclude: Iterable[str] = ("id",)) -> dict[str, Any]:
    """A record as column values for an insert: JSON fields encoded, ``exclude`` left out
    (the database assigns ``id``)."""
    encode = _JSON_FIELDS.get(type(rec), frozenset())
    skip = set(exclude)
    return {
        f.name: _dump(getattr(rec, f.name)) if f.name in encode else getattr(rec, f.name)
        for f in dataclasses.fields(rec)
        if f.name not in skip
    }


def lock_held_error(held: LockInfo, now: datetime) -> LockHeldError:
    """The error for a lock someone else holds: a dead holder (checked on its host) says so
    and names ``deployops resume`` as the way on."""
    return LockHeldError(
        held.key,
        held.owner,
        held.reason,
        held.acquired_at.isoformat(timespec="seconds"),
        (now - held.acquired_at).total_seconds(),
        holder_dead=not holder_alive(held.holder_pid, held.holder_host, held.holder_started_at),
        deployment_id=held.deployment_id,
    )


def _inserted_id(res: CursorResult[Any]) -> int:
    return int(res.inserted_primary_key[0]) if res.inserted_primary_key else 0


class StateStore:
    """Typed access to deployops' tables. Build with :meth:`open`; no I/O in ``__init__``.

    >>> store = StateStore.open("sqlite://")  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        engine: Engine,
        url: str,
        reconnect_s: float = DEFAULT_RECONNECT_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._engine = engine
        self.url = url
        self.reconnect_s = reconnect_s
        self._sleep = sleep
        self._down_since: float | None = None  # monotonic; set once a whole wait ran out

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def open(
        cls, url: str, *, migrate: bool = True, reconnect_s: float = DEFAULT_RECONNECT_S
    ) -> StateStore:
        """Connect to ``url`` (``sqlite:///path`` or ``postgresql://...``) and migrate it.

        A PostgreSQL server that cannot be reached (restarting, failing over) is waited for
        up to ``reconnect_s`` seconds per transaction before the store gives up."""
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError) as exc:
            # The message never quotes the URL: it may carry a password.
            raise ConfigError(
                "not a database URL (expected dialect://user@host:port/dbname with a numeric port)",
                path="DEPLOYOPS_DATABASE_URL",
                hint="use sqlite:///path/state.db or postgresql://user@host:5432/dbname",
            ) from exc
        backend = parsed.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ConfigError(
                f"unsupported database {backend!r}",
                path="DEPLOYOPS_DATABASE_URL",
                hint="use sqlite:///path/state.db or postgresql://user@host:5432/dbname",
            )
        if backend == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs: dict[str, Any] = {}
        if backend == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                folder = Path(parsed.database).parent
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise ConfigError(
                        f"cannot create the state folder {folder}: {exc.strerror}",
                        path="DEPLOYOPS_DATABASE_URL",
                        hint="point the sqlite URL at a writable folder, e.g. "
                        "sqlite:///.deployops/state.db",
                    ) from exc
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            engine = create_engine(parsed, **kwargs)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise ConfigError(
                f"cannot use database URL: {exc}", path="DEPLOYOPS_DATABASE_URL"
            ) from exc
        if backend == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(
            engine=engine,
            url=parsed.render_as_string(hide_password=True),
            reconnect_s=reconnect_s,
        )
        if migrate:
            store.migrate()
        return store

    def close(self) -> None:
        self._engine.dispose()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        conn = self._connect()
        try:
            with conn, conn.begin():
                yield conn
        except OperationalError as exc:
            reason = _one_line(str(exc.orig)) or _one_line(str(exc))
            raise DriverError(
                "state-store", "query", reason, retryable=True, hint=self._hint(reason)
            ) from exc

    def _hint(self, reason: str) -> str:
        if "disk is full" in reason or "No space left" in reason or "could not extend" in reason:
            where = make_url(self.url).database if self.dialect == "sqlite" else None
            place = f" ({Path(where).parent})" if where else ""
            return (
                f"the disk of the state database{place} is full: free space there "
                "(`df -h` shows it), nothing else is needed"
            )
        return f"check that the state database {self.url} is reachable and writable"

    def _connect(self) -> Connection:
        """A connection; while a PostgreSQL server cannot be reached, tried again with capped
        backoff for up to ``reconnect_s`` (a restart or fail-over takes seconds). Only the
        connecting is repeated, never a statement: nothing can be applied twice."""
        waited, delay = 0.0, 0.1
        # Once a whole wait has run out, later calls try once until a connection succeeds:
        # an operation then fails in one wait, not in one per query it still makes.
        budget = 0.0 if self._down_since is not None else self.reconnect_s
        while True:
            try:
                conn = self._engine.connect()
            except OperationalError as exc:
                if self.dialect != "postgresql" or waited >= budget:
                    reason = _one_line(str(exc.orig)) or _one_line(str(exc))
                    if self.dialect == "postgresql":
                        if self._down_since is None:
                            self._down_since = time.monotonic() - waited
                        down = time.monotonic() - self._down_since
                        reason = f"unreachable for {down:.0f}s: {reason}"
                    raise DriverError(
                        "state-store",
                        "query",
                        reason,
                        retryable=True,
                        hint=f"check that the state database {self.url} is reachable and writable",
                    ) from exc
                if not waited:
                    log.warning(
                        "the state database %s is unreachable; waiting up to %gs for it",
                        self.url,
                        self.reconnect_s,
                    )
                pause = min(delay, budget - waited)
                self._sleep(pause)
                waited += pause
                delay = min(delay * 2, 1.0)
            else:
                self._down_since = None
                return conn

    def current_revision(self) -> str | None:
        with self._tx() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
            return str(row[0]) if row else None

    def migrate(self) -> None:
        """Bring the schema to the newest migration (fast no-op when already there)."""
        if self.current_revision() == HEAD_REVISION:
            return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with self._engine.connect() as conn, _transactional_ddl(conn):
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
        except OperationalError as exc:
            raise DriverError(
                "state-store",
                "migrate",
                _one_line(str(exc.orig)),
                hint=f"check that the state database {self.url} is reachable and writable",
            ) from exc

    # ------------------------------------------------------------------ operations
    def create_operation(self, rec: OperationRecord) -> None:
        with self._tx() as conn:
            conn.execute(insert(t.operations).values(**_values(rec, exclude=())))

    def update_operation(self, operation_id: str, **fields: Any) -> None:
        """Set columns of an operation; ``detail`` is merged into the stored one."""
        with self._tx() as conn:
            if "detail" in fields:
                stored = conn.execute(
                    select(t.operations.c.detail).where(t.operations.c.id == operation_id)
                ).scalar_one_or_none()
                fields["detail"] = _dump({**json.loads(stored or "{}"), **fields["detail"]})
            if "plan" in fields:
                fields["plan"] = _dump(fields["plan"])
            conn.execute(
                update(t.operations).where(t.operations.c.id == operation_id).values(**fields)
            )

    def get_operation(self, operation_id: str) -> OperationRecord | None:
        with self._tx() as conn:
            row = (
                conn.execute(select(t.operations).where(t.operations.c.id == operation_id))
                .mappings()
                .first()
            )
        return _record(OperationRecord, row) if row else None

    def find_operation(
        self, prefix: str, *, kinds: Sequence[str] | None = None
    ) -> OperationRecord | None:
        """By full id, or by a unique prefix of one (of ``kinds``, when given)."""
        exact = self.get_operation(prefix)
        if exact is not None and (not kinds or exact.kind in kinds):
            return exact
        if len(prefix) < 4:
            return None
        q = select(t.operations).where(t.operations.c.id.startswith(prefix, autoescape=True))
        if kinds:
            q = q.where(t.operations.c.kind.in_(list(kinds)))
        with self._tx() as conn:
            rows = conn.execute(q.limit(2)).mappings().all()
        return _record(OperationRecord, rows[0]) if len(rows) == 1 else None

    def list_operations(
        self,
        *,
        kinds: Sequence[str] | None = None,
        environment: str | None = None,
        target: str | None = None,
        status: Sequence[str] | None = None,
        limit: int = 20,
    ) -> list[OperationRecord]:
        c = t.operations.c
        q = select(t.operations)
        if kinds:
            q = q.where(c.kind.in_(list(kinds)))
        if environment:
            q = q.where(c.environment == environment)
        if target:
            q = q.where(c.target == target)
        if status:
            q = q.where(c.status.in_(list(status)))
        q = q.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        with self._tx() as conn:
            return [_record(OperationRecord, r) for r in conn.execute(q).mappings().all()]

    # ------------------------------------------------------------------ deployments
    # A deployment is an operation of kind deploy or rollback, seen with its versions.
    def create_deployment(self, rec: DeploymentRecord) -> None:
        self.create_operation(rec.to_operation())

    def update_deployment(self, deployment_id: str, **fields: Any) -> None:
        detail = {k: fields.pop(k) for k in list(fields) if k in _DEPLOYMENT_DETAIL_FIELDS}
        if "service" in fields:
            fields["target"] = fields.pop("service")
        if "plan" in fields:
            stored = self.get_operation(deployment_id)
            plan = dict(stored.plan) if stored else {}
            plan["steps"] = fields["plan"]
            fields["plan"] = plan
        if detail:
            fields["detail"] = detail
        self.update_operation(deployment_id, **fields)

    def get_deployment(self, deployment_id: str) -> DeploymentRecord | None:
        op = self.get_operation(deployment_id)
        if op is None or op.kind not in DEPLOYMENT_KINDS:
            return None
        return DeploymentRecord.from_operation(op)

    def find_deployment(
        self, prefix: str, *, kinds: Sequence[str] = DEPLOYMENT_KINDS
    ) -> DeploymentRecord | None:
        """By full id, or by a unique prefix of one (``kinds``: also restores, drills)."""
        op = self.find_operation(prefix, kinds=kinds)
        return DeploymentRecord.from_operation(op) if op is not None else None

    def require_deployment(
        self, prefix: str, *, kinds: Sequence[str] = DEPLOYMENT_KINDS
    ) -> DeploymentRecord:
        """:meth:`find_deployment`, or :class:`NotFoundError` naming the id."""
        rec = self.find_deployment(prefix, kinds=kinds)
        if rec is None:
            raise NotFoundError(
                f"no deployment {prefix!r}",
                path="DEPLOYMENT_ID",
                hint="`deployops deployments list` shows the ids",
            )
        return rec

    def list_deployments(
        self,
        *,
        environment: str | None = None,
        service: str | None = None,
        status: Sequence[str] | None = None,
        limit: int = 20,
        kinds: Sequence[str] = DEPLOYMENT_KINDS,
    ) -> list[DeploymentRecord]:
        ops = self.list_operations(
            kinds=kinds,
            environment=environment,
            target=service,
            status=status,
            limit=limit,
        )
        return [DeploymentRecord.from_operation(op) for op in ops]

    # ------------------------------------------------------------------ steps
    def record_step_intent(
        self,
        deployment_id: str,
        seq: int,
        name: str,
        *,
        phase: str,
        params: dict[str, Any],
        now: datetime,
    ) -> None:
        """Write (or re-open, on resume) the intent to run step ``seq``."""
        with self._tx() as conn:
            found = conn.execute(
                select(t.steps.c.id).where(
                    and_(t.steps.c.operation_id == deployment_id, t.steps.c.seq == seq)
                )
            ).first()
            values = {
                "name": name,
                "phase": phase,
                "params": _dump(params),
                "status": "started",
                "started_at": now,
                "finished_at": None,
                "error": "",
            }
            if found:
                conn.execute(update(t.steps).where(t.steps.c.id == found[0]).values(**values))
            else:
                conn.execute(insert(t.steps).values(operation_id=deployment_id, seq=seq, **values))

    def record_step_outcome(
        self,
        deployment_id: str,
        seq: int,
        *,
        status: str,
        result: dict[str, Any] | None = None,
        error: str = "",
        now: datetime,
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                update(t.steps)
                .where(and_(t.steps.c.operation_id == deployment_id, t.steps.c.seq == seq))
                .values(status=status, result=_dump(result or {}), error=error, finished_at=now)
            )

    def steps_for(self, deployment_id: str) -> list[StepRecord]:
        with self._tx() as conn:
            rows = (
                conn.execute(
                    select(t.steps)
                    .where(t.steps.c.operation_id == deployment_id)
                    .order_by(t.steps.c.seq)
                )
                .mappings()
                .all()
            )
        return [_record(StepRecord, r) for r in rows]

    # ------------------------------------------------------------------ events
    def add_event(self, ev: EventRecord) -> int:
        with self._tx() as conn:
            return _inserted_id(conn.execute(insert(t.events).values(**_values(ev))))

    def events(
        self,
        *,
        deployment_id: str | None = None,
        kind: str | None = None,
        since_id: int = 0,
        limit: int = 1000,
    ) -> list[EventRecord]:
        q = select(t.events).where(t.events.c.id > since_id)
        if deployment_id:
            q = q.where(t.events.c.deployment_id == deployment_id)
        if kind:
            q = q.where(t.events.c.kind == kind)
        q = q.order_by(t.events.c.id).limit(limit)
        with self._tx() as conn:
            rows = conn.execute(q).mappings().all()
        return [_record(EventRecord, r) for r in rows]

    def last_event_id(self) -> int:
        """The newest event's id (0 when there is none): where a live stream starts."""
        with self._tx() as conn:
            return int(conn.execute(select(func.max(t.events.c.id))).scalar() or 0)

    # ------------------------------------------------------------------ decisions
    def add_decision(self, d: DecisionRecord) -> int:
        with self._tx() as conn:
            return _inserted_id(conn.execute(insert(t.decisions).values(**_values(d))))

    def decisions(self, *, deployment_id: str | None = None) -> list[DecisionRecord]:
        q = select(t.decisions).order_by(t.decisions.c.id)
        if deployment_id:
            q = q.where(t.decisions.c.deployment_id == deployment_id)
        with self._tx() as conn:
            rows = conn.execute(q).mappings().all()
        return [_record(DecisionRecord, r) for r in rows]

    # ------------------------------------------------------------------ locks
    def acquire_lock(
        self,
        key: str,
        *,
        owner: str,
        reason: str,
        now: datetime,
        deployment_id: str | None = None,
        holder: Holder | None = None,
    ) -> LockInfo:
        """Take ``key`` or raise :class:`LockHeldError` naming the holder. Atomic on every
        backend: the primary key decides, not a read-then-write. The row records the holding
        process (``holder``, default this one), so a holder that died is reported as such."""
        me = holder or current_holder()
        lock = LockInfo(
            key=key,
            owner=owner,
            reason=reason,
            acquired_at=now,
            deployment_id=deployment_id,
            holder_pid=me.pid,
            holder_host=me.host,
            holder_started_at=me.started_at,
        )
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(t.locks).values(**_values(lock)))
        except IntegrityError:
            held = self.get_lock(key)
            if held is None:  # released between our insert and our read: try once more
                return self.acquire_lock(
                    key,
                    owner=owner,
                    reason=reason,
                    now=now,
                    deployment_id=deployment_id,
                    holder=holder,
                )
            raise lock_held_error(held, now) from None
        return lock

    def lock_holder_alive(self, lock: LockInfo) -> bool:
        """Whether the process holding ``lock`` still runs (checked on its own host only)."""
        return holder_alive(lock.holder_pid, lock.holder_host, lock.holder_started_at)

    def get_lock(self, key: str) -> LockInfo | None:
        with self._tx() as conn:
            r = conn.execute(select(t.locks).where(t.locks.c.key == key)).mappings().first()
        return _record(LockInfo, r) if r else None

    def list_locks(self) -> list[LockInfo]:
        with self._tx() as conn:
            rows = conn.execute(select(t.locks).order_by(t.locks.c.key)).mappings().all()
        return [_record(LockInfo, r) for r in rows]

    def release_lock(self, key: str, *, owner: str) -> bool:
        """Release ``key`` if ``owner`` holds it; returns whether it did."""
        with self._tx() as conn:
            res = conn.execute(
                delete(t.locks).where(and_(t.locks.c.key == key, t.locks.c.owner == owner))
            )
            return bool(res.rowcount)

    def transfer_lock(self, key: str, *, new_owner: str, holder: Holder | None = None) -> None:
        """Hand a lock to a resuming process (``deployops resume``): it becomes the holder."""
        me = holder or current_holder()
        with self._tx() as conn:
            conn.execute(
                update(t.locks)
                .where(t.locks.c.key == key)
                .values(
                    owner=new_owner,
                    holder_pid=me.pid,
                    holder_host=me.host,
                    holder_started_at=me.started_at,
                )
            )

    def force_release_lock(self, key: str, *, actor: str, reason: str, now: datetime) -> LockInfo:
        """Break a lock whoever holds it; audited with the actor and reason."""
        held = self.get_lock(key)
        if held is None:
            raise ConfigError(
                f"no lock named {key!r}",
                path="lock",
                hint="`deployops lock list` shows the locks that are held",
            )
        with self._tx() as conn:
            conn.execute(delete(t.locks).where(t.locks.c.key == key))
        self.audit(
            AuditRecord(
                ts=now,
                actor=actor,
                action="lock.force_release",
                target=key,
                detail={"reason": reason, "held_by": held.owner, "held_for": held.reason},
            )
        )
        return held

    # ------------------------------------------------------------------ leases
    def hold_lease(self, name: str, *, holder: str, now: datetime, ttl_s: float) -> LeaseInfo:
        """Take or renew lease ``name`` for ``holder`` until ``now + ttl_s``, unless someone
        else holds it unexpired; returns whoever holds it afterwards. Atomic on every backend:
        one conditional UPDATE (or the primary key of an INSERT) decides, not a read."""
        c = t.leases.c
        until = now.timestamp() + ttl_s
        for _ in range(3):
            with self._tx() as conn:
                took = conn.execute(
                    update(t.leases)
                    .where(
                        and_(
                            c.name == name,
                            or_(c.holder == holder, c.expires_at < now.timestamp()),
                        )
                    )
                    .values(
                        holder=holder,
                        expires_at=until,
                        acquired_at=case((c.holder == holder, c.acquired_at), else_=now),
                    )
                ).rowcount
                row = conn.execute(select(t.leases).where(c.name == name)).mappings().first()
            if took or row is not None:
                assert row is not None
                return _record(LeaseInfo, row)
            try:
                with self._engine.begin() as conn:
                    conn.execute(
                        insert(t.leases).values(
                            name=name, holder=holder, acquired_at=now, expires_at=until
                        )
                    )
            except IntegrityError:
                continue  # another controller inserted it first: read who holds it
            return LeaseInfo(name=name, holder=holder, acquired_at=now, expires_at=until)
        raise DriverError(
            "state-store",
            "lease",
            f"lease {name!r} changed hands three times while being read",
            retryable=True,
        )

    def get_lease(self, name: str) -> LeaseInfo | None:
        with self._tx() as conn:
            r = conn.execute(select(t.leases).where(t.leases.c.name == name)).mappings().first()
        return _record(LeaseInfo, r) if r else None

    def release_lease(self, name: str, *, holder: str) -> bool:
        """Give the lease up (a clean shutdown), so another controller takes over at once."""
        with self._tx() as conn:
            res = conn.execute(
                delete(t.leases).where(and_(t.leases.c.name == name, t.leases.c.holder == holder))
            )
            return bool(res.rowcount)

    # ------------------------------------------------------------------ environment state
    def set_environment_state(
        self, environment: str, key: str, value: Mapping[str, Any], *, source: str, now: datetime
    ) -> None:
        """Keep ``value`` (JSON) under ``key`` for the environment, replacing what was there."""
        c = t.environment_state.c
        row = {"value": _dump(dict(value)), "source": source, "updated_at": now}
        with self._tx() as conn:
            done = conn.execute(
                update(t.environment_state)
                .where(and_(c.environment == environment, c.key == key))
                .values(**row)
            ).rowcount
            if not done:
                conn.execute(
                    insert(t.environment_state).values(environment=environment, key=key, **row)
                )

    def environment_state(self, environment: str, key: str) -> dict[str, Any] | None:
        """The value kept under ``key`` with ``source`` and ``updated_at``, or ``None``."""
        c = t.environment_state.c
        with self._tx() as conn:
            r = (
                conn.execute(
                    select(t.environment_state).where(
                        and_(c.environment == environment, c.key == key)
                    )
                )
                .mappings()
                .first()
            )
        if r is None:
            return None
        return {
            **json.loads(r["value"]),
            "source": r["source"],
            "updated_at": _aware(r["updated_at"]),
        }

    def clear_environment_state(self, environment: str, key: str) -> bool:
        c = t.environment_state.c
        with self._tx() as conn:
            res = conn.execute(
                delete(t.environment_state).where(and_(c.environment == environment, c.key == key))
            )
            return bool(res.rowcount)

    # ------------------------------------------------------------------ metric samples
    def add_samples(self, samples: Iterable[MetricSample]) -> int:
        rows = [_values(s) for s in samples]
        if not rows:
            return 0
        with self._tx() as conn:
            conn.execute(insert(t.metric_samples), rows)
        return len(rows)

    def samples(self, scope: str, metric: str, start: float, end: float) -> list[MetricSample]:
        """Samples with ``start <= ts < end``, oldest first."""
        c = t.metric_samples.c
        q = (
            select(t.metric_samples)
            .where(and_(c.scope == scope, c.metric == metric, c.ts >= start, c.ts < end))
            .order_by(c.ts)
        )
        with self._tx() as conn:
            rows = conn.execute(q).mappings().all()
        return [_record(MetricSample, r) for r in rows]

    def prune_samples(self, before: float) -> int:
        with self._tx() as conn:
            res = conn.execute(delete(t.metric_samples).where(t.metric_samples.c.ts < before))
            return int(res.rowcount or 0)

    # ------------------------------------------------------------------ measurements
    def add_measurements(self, records: Iterable[MeasurementRecord]) -> int:
        """Store observed windows (one row per colour and window). A window stored again
        (same deployment, scope, source and start: a resumed step) replaces the earlier row."""
        recs = list(records)
        if not recs:
            return 0
        c = t.measurements.c
        with self._tx() as conn:
            for r in recs:
                conn.execute(
                    delete(t.measurements).where(
                        and_(
                            c.deployment_id == r.deployment_id,
                            c.scope == r.scope,
                            c.source == r.source,
                            c.start == r.start,
                        )
                    )
                )
            conn.execute(insert(t.measurements), [_values(r) for r in recs])
        return len(recs)

    def measurements(
        self,
        *,
        deployment_id: str | None = None,
        environment: str | None = None,
        since: datetime | None = None,
        source: str | None = None,
    ) -> list[MeasurementRecord]:
        """Stored windows, oldest first (by start, then colour)."""
        c = t.measurements.c
        q = select(t.measurements)
        if deployment_id:
            q = q.where(c.deployment_id == deployment_id)
        if environment:
            q = q.where(c.environment == environment)
        if since is not None:
            q = q.where(c.end >= since)
        if source is not None:
            q = q.where(c.source == source)
        q = q.order_by(c.start, c.role, c.id)
        with self._tx() as conn:
            rows = conn.execute(q).mappings().all()
        return [_record(MeasurementRecord, r) for r in rows]

    def measured_deployments(
        self, *, since: datetime | None = None, environment: str | None = None
    ) -> list[str]:
        """Ids of the deployments with stored windows (ending at or after ``since``)."""
        c = t.measurements.c
        q = select(c.deployment_id, func.min(c.start).label("first")).group_by(c.deployment_id)
        if since is not None:
            q = q.where(c.end >= since)
        if environment:
            q = q.where(c.environment == environment)
        with self._tx() as conn:
            rows = conn.execute(q.order_by("first")).all()
        return [str(r[0]) for r in rows]

    def add_judgement(self, rec: JudgementRecord) -> int:
        vals = _values(rec)
        vals["held"] = 1 if rec.held else 0
        with self._tx() as conn:
            return _inserted_id(conn.execute(insert(t.judgements).values(**vals)))

    def judgements(self, *, deployment_id: str | None = None) -> list[JudgementRecord]:
        """Stored comparisons, oldest first."""
        q = select(t.judgements).order_by(t.judgements.c.id)
        if deployment_id:
            q = q.where(t.judgements.c.deployment_id == deployment_id)
        with self._tx() as conn:
            rows = conn.execute(q).mappings().all()
        return [_judgement(r) for r in rows]

    def get_judgement(self, judgement_id: int) -> JudgementRecord | None:
        with self._tx() as conn:
            row = (
                conn.execute(select(t.judgements).where(t.judgements.c.id == judgement_id))
                .mappings()
                .first()
            )
        return _judgement(row) if row else None

    def held_judgement(self, deployment_id: str) -> JudgementRecord | None:
        """The judgement holding ``deployment_id`` for a decision (held, undecided), if any."""
        c = t.judgements.c
        q = (
            select(t.judgements)
            .where(and_(c.deployment_id == deployment_id, c.held == 1, c.decision == ""))
            .order_by(c.id.desc())
            .limit(1)
        )
        with self._tx() as conn:
            row = conn.execute(q).mappings().first()
        return _judgement(row) if row else None

    def decide_judgement(
        self, judgement_id: int, *, decision: str, actor: str, reason: str, now: datetime
    ) -> bool:
        """Record the decision on a held judgement; ``False`` if it was already decided (the
        first decision wins: a ``deployops decide`` racing the timeout)."""
        c = t.judgements.c
        with self._tx() as conn:
            res = conn.execute(
                update(t.judgements)
                .where(and_(c.id == judgement_id, c.held == 1, c.decision == ""))
                .values(decision=decision, decided_by=actor, decision_reason=reason, decided_at=now)
            )
            return bool(res.rowcount)

    def prune_measurements(self, before: datetime) -> tuple[int, int]:
        """Delete windows that ended and judgements made before ``before``; returns how many
        of each (``rollback.measurements_retention``)."""
        with self._tx() as conn:
            windows = conn.execute(delete(t.measurements).where(t.measurements.c.end < before))
            judged = conn.execute(delete(t.judgements).where(t.judgements.c.ts < before))
            return int(windows.rowcount or 0), int(judged.rowcount or 0)

    # ------------------------------------------------------------------ audit
    def audit(self, rec: AuditRecord) -> AuditRecord:
        """Append ``rec`` to the hash-chained audit log (SEC-4) and return it as stored.

        The chain is append-only: the unique ``prev_hash`` lets exactly one writer extend a
        given head, so two processes appending at once never fork it (the loser retries)."""
        from deployops.domain.audit import GENESIS, entry_hash

        for _attempt in range(20):
            try:
                with self._tx() as conn:
                    last = conn.execute(
                        select(t.audit_log.c.id, t.audit_log.c.hash)
                        .order_by(t.audit_log.c.id.desc())
                        .limit(1)
                    ).first()
                    prev = last.hash if last is not None else GENESIS
                    values = _values(rec, exclude=("id", "prev_hash", "hash"))
                    res = conn.execute(
                        insert(t.audit_log).values(**values, prev_hash=prev, hash="")
                    )
                    key = res.inserted_primary_key
                    assert key is not None
                    new_id = int(key[0])
                    digest = entry_hash(prev, _audit_fields_of(new_id, rec))
                    conn.execute(
                        update(t.audit_log).where(t.audit_log.c.id == new_id).values(hash=digest)
                    )
                return dataclasses.replace(rec, id=new_id, prev_hash=prev, hash=digest)
            except IntegrityError:
                continue
        raise DriverError("state-store", "audit", "the audit log kept changing under this writer")

    def audit_log(
        self, *, limit: int | None = 100, oldest_first: bool = False
    ) -> list[AuditRecord]:
        q = select(t.audit_log).order_by(
            t.audit_log.c.id.asc() if oldest_first else t.audit_log.c.id.desc()
        )
        if limit is not None:
            q = q.limit(limit)
        with self._tx() as conn:
            rows = conn.execute(q).mappings().all()
        return [_record(AuditRecord, r) for r in rows]

    # ------------------------------------------------------------------ rotations
    def create_rotation(self, rec: RotationRecord) -> None:
        with self._tx() as conn:
            conn.execute(insert(t.rotations).values(**_values(rec, exclude=())))

    def update_rotation(self, rotation_id: str, **fields: Any) -> None:
        encode = _JSON_FIELDS[RotationRecord]
        values = {k: _dump(v) if k in encode else v for k, v in fields.items()}
        with self._tx() as conn:
            conn.execute(
                update(t.rotations).where(t.rotations.c.id == rotation_id).values(**values)
            )

    def get_rotation(self, rotation_id: str) -> RotationRecord | None:
        with self._tx() as conn:
            r = (
                conn.execute(select(t.rotations).where(t.rotations.c.id == rotation_id))
                .mappings()
                .first()
            )
        return _record(RotationRecord, r) if r is not None else None

    def rotations(
        self,
        *,
        environment: str | None = None,
        secret: str | None = None,
        status: str | None = None,
    ) -> list[RotationRecord]:
        """Newest first."""
        c = t.rotations.c
        q = select(t.rotations).order_by(c.started_at.desc())
        if environment is not None:
            q = q.where(c.environment == environment)
        if secret is not None:
            q = q.where(c.secret == secret)
        if status is not None:
            q = q.where(c.status == status)
        with self._tx() as conn:
            rows = conn.execute(q).mappings().all()
        return [_record(RotationRecord, r) for r in rows]

    # ------------------------------------------------------------------ jobs
    def schedule_job(
        self, *, kind: str, dedup_key: str, due_at: datetime, payload: dict[str, Any]
    ) -> bool:
        """Schedule a deferred job once; an existing ``dedup_key`` is left alone (False)."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(t.jobs).values(
                        kind=kind, dedup_key=dedup_key, due_at=due_at, payload=_dump(payload)
                    )
                )
        except IntegrityError:
            return False
        return True

    def claim_due_jobs(
        self,
        *,
        now: datetime,
        worker: str,
        limit: int = 10,
        ids: Sequence[int] | None = None,
    ) -> list[JobRecord]:
        """Atomically claim pending jobs due by ``now`` (only ``ids``, when given): a job is
        claimed by one worker only."""
        claimed: list[JobRecord] = []
        q = select(t.jobs.c.id).where(and_(t.jobs.c.status == "pending", t.jobs.c.due_at <= now))
        if ids is not None:
            q = q.where(t.jobs.c.id.in_(list(ids)))
        with self._tx() as conn:
            candidates = conn.execute(q.order_by(t.jobs.c.due_at).limit(limit)).all()
        for (job_id,) in candidates:
            with self._tx() as conn:
                res = conn.execute(
                    update(t.jobs)
                    .where(and_(t.jobs.c.id == job_id, t.jobs.c.status == "pending"))
                    .values(status="claimed", claimed_by=worker, claimed_at=now)
                )
                if res.rowcount != 1:
                    continue
                r = conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).mappings().one()
                claimed.append(_record(JobRecord, r))
        return claimed

    def finish_job(self, job_id: int, *, status: str, result: str, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id)
                .values(status=status, result=result, done_at=now)
            )

    def requeue_job(self, job_id: int, *, worker: str) -> bool:
        """Put a job ``worker`` claimed back to ``pending`` (it could not run now, e.g. its
        lock is held); it runs at a later claim."""
        with self._tx() as conn:
            res = conn.execute(
                update(t.jobs)
                .where(
                    and_(
                        t.jobs.c.id == job_id,
                        t.jobs.c.status == "claimed",
                        t.jobs.c.claimed_by == worker,
                    )
                )
                .values(status="pending", claimed_by=None, claimed_at=None)
            )
            return bool(res.rowcount)

    def jobs(self, *, status: str | None = None) -> list[JobRecord]:
        q = select(t.jobs).order_by(t.jobs.c.due_at)
        if status:
            q = q.where(t.jobs.c.status == status)
        with self._tx() as conn:
            return [_record(JobRecord, r) for r in conn.execute(q).mappings().all()]

    def release_stale_jobs(self, *, alive: Callable[[str], bool]) -> list[JobRecord]:
        """Put jobs claimed by a worker that no longer runs back to ``pending`` (a controller
        killed mid-job); returns them. Handlers are idempotent, so the next claim finishes the
        job once."""
        released: list[JobRecord] = []
        for job in self.jobs(status="claimed"):
            if job.claimed_by and alive(job.claimed_by):
                continue
            with self._tx() as conn:
                res = conn.execute(
                    update(t.jobs)
                    .where(
                        and_(
                            t.jobs.c.id == job.id,
                            t.jobs.c.status == "claimed",
                            t.jobs.c.claimed_by == job.claimed_by,
                        )
                    )
                    .values(status="pending", claimed_by=None, claimed_at=None)
                )
                if res.rowcount == 1:
                    released.append(job)
        return released

    # ------------------------------------------------------------------ pending notices
    def park_notice(
        self,
        *,
        environment: str,
        channel: str,
        action: str,
        title: str,
        notice: dict[str, Any],
        attempts: int,
        last_error: str,
        now: datetime,
        next_attempt_at: datetime,
    ) -> int:
        """Keep a notice that ``channel`` has not taken yet, for the controller to retry."""
        with self._tx() as conn:
            res = conn.execute(
                insert(t.pending_notices).values(
                    environment=environment,
                    channel=channel,
                    action=action,
                    title=title,
                    notice=_dump(notice),
                    status="pending",
                    attempts=attempts,
                    next_attempt_at=next_attempt_at,
                    last_error=last_error,
                    created_at=now,
                    updated_at=now,
                )
            )
            return _inserted_id(res)

    def claim_due_notices(
        self,
        *,
        now: datetime,
        worker: str,
        hold_until: datetime,
        environment: str | None = None,
        limit: int = 20,
    ) -> list[PendingNotice]:
        """Atomically claim pending notices due by ``now``: each is moved to ``hold_until`` so
        no other worker tries it meanwhile (one that dies holding it frees it then)."""
        c = t.pending_notices.c
        q = select(c.id, c.next_attempt_at).where(
            and_(c.status == "pending", c.next_attempt_at <= now)
        )
        if environment is not None:
            q = q.where(c.environment == environment)
        with self._tx() as conn:
            candidates = conn.execute(q.order_by(c.next_attempt_at, c.id).limit(limit)).all()
        claimed: list[PendingNotice] = []
        for notice_id, due in candidates:
            with self._tx() as conn:
                res = conn.execute(
                    update(t.pending_notices)
                    .where(and_(c.id == notice_id, c.status == "pending", c.next_attempt_at == due))
                    .values(next_attempt_at=hold_until, claimed_by=worker, updated_at=now)
                )
                if res.rowcount != 1:
                    continue
                row = (
                    conn.execute(select(t.pending_notices).where(c.id == notice_id))
                    .mappings()
                    .one()
                )
                claimed.append(_record(PendingNotice, row))
        return claimed

    def finish_notice(
        self,
        notice_id: int,
        *,
        status: str,
        now: datetime,
        attempts: int | None = None,
        last_error: str | None = None,
    ) -> bool:
        """Mark a pending notice ``delivered`` or ``expired`` (False: it was not pending)."""
        values: dict[str, Any] = {"status": status, "updated_at": now, "finished_at": now}
        if attempts is not None:
            values["attempts"] = attempts
        if last_error is not None:
            values["last_error"] = last_error
        c = t.pending_notices.c
        with self._tx() as conn:
            res = conn.execute(
                update(t.pending_notices)
                .where(and_(c.id == notice_id, c.status == "pending"))
                .values(**values)
            )
            return bool(res.rowcount)

    def retry_notice_later(
        self,
        notice_id: int,
        *,
        now: datetime,
        attempts: int,
        last_error: str,
        next_attempt_at: datetime,
    ) -> None:
        c = t.pending_notices.c
        with self._tx() as conn:
            conn.execute(
                update(t.pending_notices)
                .where(and_(c.id == notice_id, c.status == "pending"))
                .values(
                    attempts=attempts,
                    rounds=c.rounds + 1,
                    last_error=last_error,
                    next_attempt_at=next_attempt_at,
                    claimed_by=None,
                    updated_at=now,
                )
            )

    def pending_notices(
        self,
        *,
        environment: str | None = None,
        status: str | Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[PendingNotice]:
        """Newest first."""
        c = t.pending_notices.c
        q = select(t.pending_notices).order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        if environment is not None:
            q = q.where(c.environment == environment)
        if isinstance(status, str):
            q = q.where(c.status == status)
        elif status is not None:
            q = q.where(c.status.in_(list(status)))
        with self._tx() as conn:
            return [_record(PendingNotice, r) for r in conn.execute(q).mappings().all()]

    def notice_counts(self, *, environment: str | None = None) -> dict[str, int]:
        """``status -> count`` of the stored notices (``pending``, ``delivered``, ``expired``)."""
        c = t.pending_notices.c
        q = select(c.status, func.count()).group_by(c.status)
        if environment is not None:
            q = q.where(c.environment == environment)
        with self._tx() as conn:
            return {str(st): int(n) for st, n in conn.execute(q).all()}

    def deployment_counts(self) -> dict[tuple[str, str, str], int]:
        """``(environment, kind, status) -> count`` over all deployments (for /metrics)."""
        c = t.operations.c
        q = (
            select(c.environment, c.kind, c.status, func.count())
            .where(c.kind.in_(list(DEPLOYMENT_KINDS)))
            .group_by(c.environment, c.kind, c.status)
        )
        with self._tx() as conn:
            return {(r[0], r[1], r[2]): int(r[3]) for r in conn.execute(q).all()}

    # ------------------------------------------------------------------ alarms (MON-1)
    def alarm_state(self, environment: str, service: str, alarm: str) -> AlarmStateRecord | None:
        c = t.alarm_states.c
        q = select(t.alarm_states).where(
            and_(c.environment == environment, c.service == service, c.alarm == alarm)
        )
        with self._tx() as conn:
            r = conn.execute(q).mappings().first()
        return _record(AlarmStateRecord, r) if r else None

    def alarm_states(self, *, environment: str | None = None) -> list[AlarmStateRecord]:
        c = t.alarm_states.c
        q = select(t.alarm_states).order_by(c.environment, c.service, c.alarm)
        if environment:
            q = q.where(c.environment == environment)
        with self._tx() as conn:
            return [_record(AlarmStateRecord, r) for r in conn.execute(q).mappings().all()]

    def save_alarm_state(
        self,
        rec: AlarmStateRecord,
        *,
        transition: AlarmHistoryRecord | None = None,
    ) -> None:
        """Upsert the alarm's current state and, in the same transaction, its history row."""
        c = t.alarm_states.c
        key = and_(c.environment == rec.environment, c.service == rec.service, c.alarm == rec.alarm)
        changed = _values(rec, exclude=("environment", "service", "alarm"))
        with self._tx() as conn:
            res = conn.execute(update(t.alarm_states).where(key).values(**changed))
            if not res.rowcount:
                conn.execute(insert(t.alarm_states).values(**_values(rec)))
            if transition is not None:
                conn.execute(insert(t.alarm_history).values(**_values(transition)))

    def alarm_history(
        self,
        alarm: str,
        *,
        environment: str | None = None,
        service: str | None = None,
        limit: int = 100,
    ) -> list[AlarmHistoryRecord]:
        """The alarm's state changes, oldest first (the newest ``limit``)."""
        q = select(t.alarm_history).where(t.alarm_history.c.alarm == alarm)
        return self._newest(AlarmHistoryRecord, q, t.alarm_history, environment, service, limit)

    # ------------------------------------------------------------------ scaling (IAC-5)
    def add_scaling_activity(self, a: ScalingActivity) -> int:
        with self._tx() as conn:
            return _inserted_id(conn.execute(insert(t.scaling_activities).values(**_values(a))))

    def scaling_activities(
        self, *, environment: str | None = None, service: str | None = None, limit: int = 100
    ) -> list[ScalingActivity]:
        """The newest ``limit`` activities, oldest first."""
        q = select(t.scaling_activities)
        return self._newest(ScalingActivity, q, t.scaling_activities, environment, service, limit)

    def _newest(
        self,
        cls: type[_R],
        q: Select[Any],
        table: Table,
        environment: str | None,
        service: str | None,
        limit: int,
    ) -> list[_R]:
        """The newest ``limit`` rows of ``q`` (of ``environment`` and ``service`` when given),
        oldest first."""
        c = table.c
        if environment:
            q = q.where(c.environment == environment)
        if service:
            q = q.where(c.service == service)
        q = q.order_by(c.id.desc()).limit(limit)
        with self._tx() as conn:
            rows = conn.execute(q).mappings().all()
        return [_record(cls, r) for r in reversed(rows)]

    # ------------------------------------------------------------------ checklist (CHK)
    def add_checklist_entry(self, entry: ChecklistEntry) -> int:
        with self._tx() as conn:
            return _inserted_id(conn.execute(insert(t.checklist_entries).values(**_values(entry))))

    def checklist_entries(
        self,
        *,
        deployment_id: str | None = None,
        environment: str | None = None,
        service: str | None = None,
        version: str | None = None,
        unlinked: bool = False,
        stage: str | None = None,
    ) -> list[ChecklistEntry]:
        """Entries oldest first: of a deployment, or of a release (``unlinked``: those not yet
        attached to a deployment, i.e. sign-offs waiting for the deploy)."""
        c = t.checklist_entries.c
        q = select(t.checklist_entries)
        if deployment_id:
            q = q.where(c.deployment_id == deployment_id)
        if environment:
            q = q.where(c.environment == environment)
        if service:
            q = q.where(c.service == service)
        if version:
            q = q.where(c.version == version)
        if unlinked:
            q = q.where(c.deployment_id.is_(None))
        if stage:
            q = q.where(c.stage == stage)
        q = q.order_by(c.id)
        with self._tx() as conn:
            return [_record(ChecklistEntry, r) for r in conn.execute(q).mappings().all()]

    def link_checklist(
        self, *, environment: str, service: str, version: str, deployment_id: str
    ) -> int:
        """Attach a release's waiting sign-offs to the deployment that ships it."""
        c = t.checklist_entries.c
        with self._tx() as conn:
            res = conn.execute(
                update(t.checklist_entries)
                .where(
                    and_(
                        c.environment == environment,
                        c.service == service,
                        c.version == version,
                        c.deployment_id.is_(None),
                    )
                )
                .values(deployment_id=deployment_id)
            )
            return int(res.rowcount or 0)

    def count(self, table: str) -> int:
        """Rows in ``table`` (for tests and status output)."""
        tbl = t.metadata.tables[table]
        with self._tx() as conn:
            return int(conn.execute(select(func.count()).select_from(tbl)).scalar_one())


@contextmanager
def _transactional_ddl(conn: Connection) -> Iterator[None]:
    """Run a migration as one transaction, so a process killed half-way leaves the previous
    revision whole. PostgreSQL does this by itself; Python's sqlite3 module commits before
    every CREATE / ALTER / DROP (its legacy transaction handling), so a kill between two of a
    migration's statements would leave a half-built schema with the old revision stamped and
    every later open failing. Here the module is told to stay out of it and the transaction is
    opened explicitly (IMMEDIATE: a second process migrating at the same time waits, then finds
    the schema current)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    raw: Any = conn.connection.dbapi_connection
    saved = raw.isolation_level
    raw.isolation_level = None
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield
    finally:
        if raw.in_transaction:
            raw.rollback()
        raw.isolation_level = saved


def _sqlite_pragmas(dbapi_conn: Any, _connection_record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the local platform's metric collector write while the CLI reads.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
