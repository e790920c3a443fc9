"""A secret rotation as a frozen plan of steps (SEC-3). Pure: the engine runs it.

Secrets Manager's four staged steps, then the replicas moved onto the new value:

1. :class:`CreatePending` — a new value labelled ``AWSPENDING`` (current untouched);
2. :class:`SetOnTarget` — the database role gets the new password (the *other* role of the
   alternating pair, so the role in use keeps working until every replica has moved);
3. :class:`TestPending` — log in with the pending value (or check its shape);
4. :class:`Promote` — ``AWSCURRENT`` moves to it, the old current becomes ``AWSPREVIOUS``;
5. :class:`RestartReplicas` — services whose tasks read the secret get a new task definition
   revision and are replaced rolling (never below 100 % healthy), as ECS forces a new
   deployment; 6. :class:`VerifyCurrent` — the current value works and every replica moved.

A failure before :class:`Promote` discards the pending value and puts the target back; a
failure after it promotes the old value again and moves the replicas back. Every step is
idempotent, so a rotation resumed after a crash repeats its last step safely.

>>> plan = plan_rotation(name="jwt-secret", kind=SecretKind.JWT_SECRET, version_id="v",
...                      current_version_id="c", previous_version_id="", services=("web-blue",))
>>> [type(s).__name__ for s in plan]
['CreatePending', 'SetOnTarget', 'TestPending', 'Promote', 'RestartReplicas', 'VerifyCurrent']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployops.domain.secrets import SecretKind

__all__ = [
    "STEP_TYPES",
    "CreatePending",
    "Promote",
    "RestartReplicas",
    "RotationStep",
    "SetOnTarget",
    "TestPending",
    "VerifyCurrent",
    "plan_rotation",
    "step_from_dict",
    "step_to_dict",
]


@dataclass(frozen=True, slots=True)
class RotationStep:
    """What every step knows: the secret, its kind and the version being rotated in."""

    secret: str
    kind: SecretKind
    version_id: str

    @property
    def key(self) -> str:
        """A step's identity in the stored progress."""
        return type(self).__name__


@dataclass(frozen=True, slots=True)
class CreatePending(RotationStep):
    current_version_id: str = ""  # "" when the secret has no value yet
    previous_version_id: str = ""
    # frozen settings the value is generated with (token lifetime, versions kept, roles)
    settings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SetOnTarget(RotationStep):
    pass


@dataclass(frozen=True, slots=True)
class TestPending(RotationStep):
    current_version_id: str = ""


@dataclass(frozen=True, slots=True)
class Promote(RotationStep):
    current_version_id: str = ""


@dataclass(frozen=True, slots=True)
class RestartReplicas(RotationStep):
    services: tuple[str, ...] = ()
    timeout_s: float = 300.0


@dataclass(frozen=True, slots=True)
class VerifyCurrent(RotationStep):
    services: tuple[str, ...] = ()


STEP_TYPES: Mapping[str, type[RotationStep]] = {
    cls.__name__: cls
    for cls in (CreatePending, SetOnTarget, TestPending, Promote, RestartReplicas, VerifyCurrent)
}


def plan_rotation(
    *,
    name: str,
    kind: SecretKind,
    version_id: str,
    current_version_id: str,
    previous_version_id: str,
    services: Sequence[str],
    settings: Mapping[str, str] | None = None,
    restart_timeout_s: float = 300.0,
) -> list[RotationStep]:
    common: dict[str, Any] = {"secret": name, "kind": kind, "version_id": version_id}
    return [
        CreatePending(
            **common,
            current_version_id=current_version_id,
            previous_version_id=previous_version_id,
            settings=tuple(sorted((settings or {}).items())),
        ),
        SetOnTarget(**common),
        TestPending(**common, current_version_id=current_version_id),
        Promote(**common, current_version_id=current_version_id),
        RestartReplicas(**common, services=tuple(services), timeout_s=restart_timeout_s),
        VerifyCurrent(**common, services=tuple(services)),
    ]


def step_to_dict(step: RotationStep) -> dict[str, Any]:
    out: dict[str, Any] = {"type": step.key}
    for f in dataclasses.fields(step):
        value = getattr(step, f.name)
        if isinstance(value, tuple):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        out[f.name] = value.value if isinstance(value, SecretKind) else value
    return out


def step_from_dict(data: Mapping[str, Any]) -> RotationStep:
    cls = STEP_TYPES[str(data["type"])]
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = data[f.name]
        if f.name == "kind":
            value = SecretKind(value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[f.name] = value
    return cls(**kwargs)
