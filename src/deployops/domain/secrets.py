"""Managed secrets, their staging labels and rotation schedules (SEC-2, SEC-3). Pure.

A secret has versions; at most one carries each staging label, as in AWS Secrets Manager:
``AWSCURRENT`` (what applications read), ``AWSPENDING`` (made by a rotation, not yet promoted)
and ``AWSPREVIOUS`` (the value before the last promotion). Due dates are arithmetic on the time
of the last rotation and the period, with "now" passed in (the caller's clock).

>>> from datetime import datetime, UTC
>>> last = datetime(2026, 1, 1, tzinfo=UTC)
>>> next_due(last, period_days=90).date().isoformat()
'2026-04-01'
>>> is_due(last, period_days=90, now=datetime(2026, 4, 1, tzinfo=UTC))
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "DEFAULT_PERIOD_DAYS",
    "ManagedSecret",
    "SecretInfo",
    "SecretKind",
    "SecretStatus",
    "SecretVersion",
    "Stage",
    "is_due",
    "next_due",
    "promote_labels",
    "secret_status",
]


class Stage(StrEnum):
    """Staging labels, spelled as Secrets Manager spells them so every store agrees."""

    CURRENT = "AWSCURRENT"
    PENDING = "AWSPENDING"
    PREVIOUS = "AWSPREVIOUS"


class SecretKind(StrEnum):
    """What a managed secret is, which decides how it is generated and applied (SEC-2)."""

    DATABASE_PASSWORD = "database-password"  # noqa: S105 - a kind, not a password
    JWT_SECRET = "jwt-secret"  # noqa: S105 - a kind
    API_KEYS = "api-keys"
    ENCRYPTION_KEYS = "encryption-keys"


# SEC-3: database password 90 days, API keys 180, JWT signing key yearly. The guide gives no
# period for encryption keys; a yearly rotation (old keys kept for decryption) is the default.
DEFAULT_PERIOD_DAYS: Mapping[SecretKind, float] = {
    SecretKind.DATABASE_PASSWORD: 90,
    SecretKind.API_KEYS: 180,
    SecretKind.JWT_SECRET: 365,
    SecretKind.ENCRYPTION_KEYS: 365,
}


@dataclass(frozen=True, slots=True)
class SecretVersion:
    """One version's metadata (never its value)."""

    version_id: str
    stages: frozenset[Stage]
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What a store knows about a secret, without any value."""

    name: str
    versions: tuple[SecretVersion, ...]

    def with_stage(self, stage: Stage) -> SecretVersion | None:
        return next((v for v in self.versions if stage in v.stages), None)

    @property
    def current(self) -> SecretVersion | None:
        return self.with_stage(Stage.CURRENT)

    @property
    def pending(self) -> SecretVersion | None:
        return self.with_stage(Stage.PENDING)

    @property
    def previous(self) -> SecretVersion | None:
        return self.with_stage(Stage.PREVIOUS)


def promote_labels(
    labels: Mapping[str, frozenset[Stage]], version_id: str
) -> dict[str, frozenset[Stage]]:
    """The labels after ``version_id`` becomes current: the old current becomes previous, the
    old previous loses its label, ``version_id`` loses pending. Idempotent: promoting the
    current version again changes nothing. Every store applies this one rule.

    >>> before = {"v1": frozenset({Stage.CURRENT}), "v2": frozenset({Stage.PENDING})}
    >>> after = promote_labels(before, "v2")
    >>> sorted(after["v2"]), sorted(after["v1"])
    (['AWSCURRENT'], ['AWSPREVIOUS'])
    >>> promote_labels(after, "v2") == after
    True
    """
    if version_id not in labels:
        raise KeyError(version_id)
    if Stage.CURRENT in labels[version_id]:
        return {**labels, version_id: labels[version_id] - {Stage.PENDING}}
    old_current = next((v for v, s in labels.items() if Stage.CURRENT in s), None)
    out: dict[str, frozenset[Stage]] = {}
    for vid, stages in labels.items():
        new = set(stages) - {Stage.PREVIOUS}
        if vid == version_id:
            new = (new - {Stage.PENDING}) | {Stage.CURRENT}
        elif vid == old_current:
            new = (new - {Stage.CURRENT}) | {Stage.PREVIOUS}
        out[vid] = frozenset(new)
    return out


@dataclass(frozen=True, slots=True)
class ManagedSecret:
    """A secret deployops rotates: its name in the store, kind and period (SEC-2, SEC-3).

    ``grace_days`` keeps the previous value usable after a rotation (the JWT key verifies
    tokens for their lifetime; encryption keys keep ``keep_versions`` old keys to decrypt).
    """

    name: str
    kind: SecretKind
    period_days: float
    options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def default(cls, kind: SecretKind) -> ManagedSecret:
        return cls(name=kind.value, kind=kind, period_days=DEFAULT_PERIOD_DAYS[kind])


def next_due(last_rotated: datetime, *, period_days: float) -> datetime:
    """When a secret last rotated at ``last_rotated`` is due again."""
    return last_rotated + timedelta(days=period_days)


def is_due(last_rotated: datetime | None, *, period_days: float, now: datetime) -> bool:
    """Due when never rotated or when the period has passed (the due instant included)."""
    if last_rotated is None:
        return True
    return now >= next_due(last_rotated, period_days=period_days)


@dataclass(frozen=True, slots=True)
class SecretStatus:
    """One row of ``deployops secrets status``: never a value."""

    name: str
    kind: SecretKind
    store: str
    version: str | None
    last_rotated: datetime | None
    next_due: datetime | None
    due: bool
    pending: str | None = None
    problem: str = ""


def secret_status(
    secret: ManagedSecret,
    *,
    store: str,
    info: SecretInfo | None,
    last_rotated: datetime | None,
    now: datetime,
    problem: str = "",
) -> SecretStatus:
    """The status row for ``secret`` given what the store said and when it last rotated."""
    current = info.current if info else None
    pending = info.pending if info else None
    if last_rotated is None and current is not None:
        last_rotated = current.created_at
    return SecretStatus(
        name=secret.name,
        kind=secret.kind,
        store=store,
        version=current.version_id if current else None,
        last_rotated=last_rotated,
        next_due=next_due(last_rotated, period_days=secret.period_days) if last_rotated else None,
        due=is_due(last_rotated, period_days=secret.period_days, now=now),
        pending=pending.version_id if pending else None,
        problem=problem,
    )


def due_secrets(
    rows: Sequence[SecretStatus],
) -> list[str]:
    """Names of the rows that are due and have a current value to rotate from."""
    return [r.name for r in rows if r.due and not r.problem]
