"""A secret rotation as a frozen plan of steps (SEC-3). Pure: the engine's runner runs it.

Secrets Manager's four staged steps, then the replicas moved onto the new value:

1. :class:`CreatePending` — a new value labelled ``AWSPENDING`` (current untouched);
2. :class:`SetOnTarget` — the database role gets the new password (the *other* role of the
   alternating pair, so the role in use keeps working until every replica has moved);
3. :class:`TestPending` — log in with the pending value (or check its shape);
4. :class:`Promote` — ``AWSCURRENT`` moves to it, the old current becomes ``AWSPREVIOUS``;
5. :class:`RestartReplicas` — services whose tasks read the secret get a new task definition
   revision and are replaced rolling (never below 100 % healthy), as ECS forces a new
   deployment; 6. :class:`VerifyCurrent` — the current value works and every replica moved.

A failure puts everything back with steps of its own (:func:`plan_revert`, stored and resumed
like the others): after :class:`Promote` the old value is made current again
(:class:`RevertPromote`) and the replicas moved back (:class:`MoveReplicasBack`); the role the
pending value was set on gets its old password (:class:`RevertTarget`); the pending value is
discarded (:class:`DiscardPending`); the old current value is checked (:class:`VerifyRestored`).
Every step is idempotent, so a rotation resumed after a crash repeats its last step safely.

>>> steps = plan_rotation(name="jwt-secret", kind=SecretKind.JWT_SECRET, version_id="v",
...                       current_version_id="c", previous_version_id="", services=("web-blue",))
>>> [type(s).__name__ for s in steps]
['CreatePending', 'SetOnTarget', 'TestPending', 'Promote', 'RestartReplicas', 'VerifyCurrent']
>>> [type(s).__name__ for s in plan_revert(steps, failed=2)]
['RevertTarget', 'DiscardPending', 'VerifyRestored']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from deployops.domain.plan import Step, register_step_type
from deployops.domain.secrets import SecretKind

__all__ = [
    "REVERT_STEP_TYPES",
    "STEP_TYPES",
    "CreatePending",
    "DiscardPending",
    "MoveReplicasBack",
    "Promote",
    "RestartReplicas",
    "RevertPromote",
    "RevertTarget",
    "RotationStep",
    "SetOnTarget",
    "TestPending",
    "VerifyCurrent",
    "VerifyRestored",
    "plan_revert",
    "plan_rotation",
]


@dataclass(frozen=True, slots=True)
class RotationStep(Step):
    """What every step knows: the secret, its kind and the version being rotated in (for the
    steps that put things back: the version they restore, when they name one)."""

    phase: ClassVar[str] = "rotate"
    secret: str
    secret_kind: SecretKind
    version_id: str

    def __post_init__(self) -> None:
        # a plan read back from the store holds the kind as its string value
        if not isinstance(self.secret_kind, SecretKind):
            object.__setattr__(self, "secret_kind", SecretKind(self.secret_kind))

    @property
    def key(self) -> str:
        """A step's name in the rotation's record of the steps done."""
        return type(self).__name__


@register_step_type
@dataclass(frozen=True, slots=True)
class CreatePending(RotationStep):
    current_version_id: str = ""  # "" when the secret has no value yet
    previous_version_id: str = ""
    # frozen settings the value is generated with (token lifetime, versions kept, roles)
    settings: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        return f"create a pending value of {self.secret} (version {self.version_id[:8]})"


@register_step_type
@dataclass(frozen=True, slots=True)
class SetOnTarget(RotationStep):
    def describe(self) -> str:
        return f"set the pending value of {self.secret} where it takes effect"


@register_step_type
@dataclass(frozen=True, slots=True)
class TestPending(RotationStep):
    current_version_id: str = ""

    def describe(self) -> str:
        return f"test the pending value of {self.secret}"


@register_step_type
@dataclass(frozen=True, slots=True)
class Promote(RotationStep):
    current_version_id: str = ""

    def describe(self) -> str:
        return f"make version {self.version_id[:8]} of {self.secret} current"


@register_step_type
@dataclass(frozen=True, slots=True)
class RestartReplicas(RotationStep):
    services: tuple[str, ...] = ()
    timeout_s: float = 300.0

    def describe(self) -> str:
        if not self.services:
            return f"no running service reads {self.secret}: no replica to move"
        return (
            f"replace the replicas of {', '.join(self.services)} rolling onto version "
            f"{self.version_id[:8]} (up to {self.timeout_s:g}s)"
        )


@register_step_type
@dataclass(frozen=True, slots=True)
class VerifyCurrent(RotationStep):
    services: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"verify the current value of {self.secret} works and every replica moved"


# ------------------------------------------------------------------ putting things back
@register_step_type
@dataclass(frozen=True, slots=True)
class RevertPromote(RotationStep):
    """``version_id`` is the new version; ``current_version_id`` is made current again."""

    phase: ClassVar[str] = "revert"
    current_version_id: str = ""

    def describe(self) -> str:
        return f"make the old version {self.current_version_id[:8]} of {self.secret} current again"


@register_step_type
@dataclass(frozen=True, slots=True)
class MoveReplicasBack(RestartReplicas):
    """Replicas replaced again, onto the restored version (``version_id``)."""

    phase: ClassVar[str] = "revert"

    def describe(self) -> str:
        return (
            f"move the replicas of {', '.join(self.services)} back onto version "
            f"{self.version_id[:8]} (up to {self.timeout_s:g}s)"
        )


@register_step_type
@dataclass(frozen=True, slots=True)
class RevertTarget(RotationStep):
    """The role the pending value (``version_id``) was set on gets its password from before."""

    phase: ClassVar[str] = "revert"
    previous_version_id: str = ""

    def describe(self) -> str:
        return f"give the target of {self.secret} its value from before the rotation"


@register_step_type
@dataclass(frozen=True, slots=True)
class DiscardPending(RotationStep):
    phase: ClassVar[str] = "revert"

    def describe(self) -> str:
        return f"discard the pending value of {self.secret}"


@register_step_type
@dataclass(frozen=True, slots=True)
class VerifyRestored(RotationStep):
    """``version_id`` (the value from before) is current and works."""

    phase: ClassVar[str] = "revert"

    def describe(self) -> str:
        return f"verify version {self.version_id[:8]} of {self.secret} is current and works"


STEP_TYPES: Mapping[str, type[RotationStep]] = {
    cls.__name__: cls
    for cls in (CreatePending, SetOnTarget, TestPending, Promote, RestartReplicas, VerifyCurrent)
}
REVERT_STEP_TYPES: Mapping[str, type[RotationStep]] = {
    cls.__name__: cls
    for cls in (RevertPromote, MoveReplicasBack, RevertTarget, DiscardPending, VerifyRestored)
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
    common: dict[str, Any] = {"secret": name, "secret_kind": kind, "version_id": version_id}
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


def plan_revert(steps: Sequence[Step], *, failed: int) -> list[RotationStep]:
    """The steps that put back what ``steps[: failed + 1]`` did (the step at ``failed`` may
    have acted in part). Never leaves two current values, or none: the old value is made
    current again only when there is one; a first value ever stays the only one."""
    first = steps[0]
    if not isinstance(first, CreatePending):
        raise ValueError("a rotation plan starts with CreatePending")
    reached = {type(s) for s in steps[: failed + 1]}
    common: dict[str, Any] = {"secret": first.secret, "secret_kind": first.secret_kind}
    old = first.current_version_id
    out: list[RotationStep] = []
    if Promote in reached and old:
        out.append(RevertPromote(**common, version_id=first.version_id, current_version_id=old))
    restart = next((s for s in steps if isinstance(s, RestartReplicas)), None)
    if RestartReplicas in reached and old and restart is not None and restart.services:
        out.append(
            MoveReplicasBack(
                **common, version_id=old, services=restart.services, timeout_s=restart.timeout_s
            )
        )
    if SetOnTarget in reached:
        out.append(
            RevertTarget(
                **common, version_id=first.version_id, previous_version_id=first.previous_version_id
            )
        )
    out.append(DiscardPending(**common, version_id=first.version_id))
    if old:
        out.append(VerifyRestored(**common, version_id=old))
    return out
