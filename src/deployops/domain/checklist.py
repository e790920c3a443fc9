"""The deployment checklist (CHK-1..CHK-3) as gates: items, their verdicts and a gate's outcome.

Each item belongs to a stage (``pre``, ``during``, ``post``), is automated (judged from an
artefact or a measurement) or manual (signed off by a person), and says what happens when it
fails. The guide's items are :data:`DEFAULT_ITEMS`; a project changes them in ``deployops.yaml``
(``config/checklist.py``).

>>> v = ItemVerdict(item="lint", passed=True, summary="0 lint errors", evidence={"errors": 0})
>>> judge_gate(Stage.PRE, [v]).passed
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "DEFAULT_ITEMS",
    "ArtefactError",
    "Check",
    "GateOutcome",
    "ItemDefault",
    "ItemKind",
    "ItemStatus",
    "ItemVerdict",
    "OnFailure",
    "Stage",
    "default_item",
    "judge_gate",
]


class Stage(StrEnum):
    PRE = "pre"
    DURING = "during"
    POST = "post"


class ItemKind(StrEnum):
    AUTOMATED = "automated"
    MANUAL = "manual"


class OnFailure(StrEnum):
    """What a failed item does. ``block`` refuses the deploy (pre); ``rollback`` reverts the
    release (during); ``hold`` pauses for a person's decision (during); ``warn`` records
    and notifies, and the deploy carries on."""

    BLOCK = "block"
    ROLLBACK = "rollback"
    HOLD = "hold"
    WARN = "warn"


# The actions each stage allows: a pre item cannot roll back what has not been deployed.
STAGE_ACTIONS: Mapping[Stage, tuple[OnFailure, ...]] = {
    Stage.PRE: (OnFailure.BLOCK, OnFailure.WARN),
    Stage.DURING: (OnFailure.ROLLBACK, OnFailure.HOLD, OnFailure.WARN),
    Stage.POST: (OnFailure.WARN,),
}


class Check(StrEnum):
    """How an automated item is judged (the evaluator in ``domain/artefacts.py`` or the
    engine's measurement)."""

    JUNIT = "junit"
    COVERAGE = "coverage"
    LINT = "lint"
    SECURITY = "security"
    APPROVALS = "approvals"
    NOTICE = "notice"
    METRIC = "metric"
    MILESTONE = "milestone"
    SMOKE = "smoke"
    DATABASE = "database"
    HTTP = "http"
    LOGS = "logs"
    PERFORMANCE = "performance"
    REPORT = "report"
    MANUAL = "manual"


class ItemStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SIGNED = "signed"  # a manual item signed off
    PENDING = "pending"  # a manual item not signed yet, or an automated one not judged yet
    NOT_REQUIRED = "not_required"  # an optional manual item left unsigned
    OVERRIDDEN = "overridden"  # failed, but an admin let the deploy through with a reason
    WARNED = "warned"  # failed with on_failure: warn
    HELD = "held"  # a during-deploy limit broken, the deployment waiting for a decision


class ArtefactError(ValueError):
    """An artefact that cannot be judged: missing, empty, malformed or about something else.
    ``item`` and ``source`` (the file) say which; the message says what to do."""

    def __init__(self, message: str, *, item: str, source: str) -> None:
        super().__init__(message)
        self.message = message
        self.item = item
        self.source = source

    def __str__(self) -> str:
        return f"{self.item}: {self.source}: {self.message}"


@dataclass(frozen=True, slots=True)
class ItemVerdict:
    """An item's judgement with what it was judged on (CONVENTIONS 16: no verdict without
    evidence). ``summary`` is one line for people; ``evidence`` the numbers."""

    item: str
    passed: bool
    summary: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "passed": self.passed,
            "summary": self.summary,
            "evidence": dict(self.evidence),
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class ItemDefault:
    """One of the guide's items: its stage, kind, check, action and title."""

    name: str
    stage: Stage
    kind: ItemKind
    check: Check
    title: str
    on_failure: OnFailure
    required: bool = True


def _pre(name: str, check: Check, title: str, **kw: Any) -> ItemDefault:
    kind = ItemKind.MANUAL if check is Check.MANUAL else ItemKind.AUTOMATED
    kw.setdefault("on_failure", OnFailure.BLOCK)
    return ItemDefault(name=name, stage=Stage.PRE, kind=kind, check=check, title=title, **kw)


def _during(name: str, check: Check, title: str) -> ItemDefault:
    return ItemDefault(
        name=name,
        stage=Stage.DURING,
        kind=ItemKind.AUTOMATED,
        check=check,
        title=title,
        on_failure=OnFailure.ROLLBACK,
    )


def _post(name: str, check: Check, title: str, **kw: Any) -> ItemDefault:
    kind = ItemKind.MANUAL if check is Check.MANUAL else ItemKind.AUTOMATED
    kw.setdefault("on_failure", OnFailure.WARN)
    return ItemDefault(name=name, stage=Stage.POST, kind=kind, check=check, title=title, **kw)


# The guide's chapter 6, in its order.
DEFAULT_ITEMS: tuple[ItemDefault, ...] = (
    # CHK-1 code quality
    _pre("unit-tests", Check.JUNIT, "all unit tests pass"),
    _pre("coverage", Check.COVERAGE, "test coverage at least 80 %"),
    _pre("e2e-tests", Check.JUNIT, "end-to-end tests pass"),
    _pre("lint", Check.LINT, "no lint errors"),
    _pre("security-scan", Check.SECURITY, "security scan: 0 critical, 0 high"),
    # CHK-1 review
    _pre("code-review", Check.APPROVALS, "code review: at least 2 approvals"),
    _pre(
        "architecture-review",
        Check.MANUAL,
        "architecture change approved (where needed)",
        required=False,
    ),
    _pre(
        "security-review",
        Check.MANUAL,
        "security review done (changes touching sensitive data)",
        required=False,
    ),
    # CHK-1 infrastructure
    _pre("migration-plan", Check.MANUAL, "database migration plan checked"),
    _pre("rollback-plan", Check.MANUAL, "rollback plan written down"),
    _pre("capacity-check", Check.MANUAL, "capacity checked (CPU, memory, storage)"),
    # CHK-1 communication
    _pre(
        "deployment-notice",
        Check.NOTICE,
        "deployment notice sent to #deployments",
        on_failure=OnFailure.WARN,
    ),
    _pre(
        "maintenance-window", Check.MANUAL, "maintenance window set (where needed)", required=False
    ),
    _pre("on-call", Check.MANUAL, "on-call engineer confirmed"),
    # CHK-2 real-time monitoring
    _during("error-rate", Check.METRIC, "error rate below 1 %"),
    _during("p99-latency", Check.METRIC, "P99 response time below 500 ms"),
    _during("cpu", Check.METRIC, "CPU below 70 %"),
    _during("memory", Check.METRIC, "memory below 80 %"),
    _during("health-checks", Check.METRIC, "health checks passing"),
    # CHK-2 milestones
    _during("task-definition-registered", Check.MILESTONE, "task definition registered"),
    _during("containers-started", Check.MILESTONE, "new containers started"),
    _during("health-passed", Check.MILESTONE, "health check passed"),
    _during("traffic-switched", Check.MILESTONE, "traffic switched"),
    # CHK-3 verification
    _post("smoke-tests", Check.SMOKE, "smoke tests on the key endpoints"),
    _post("manual-checks", Check.MANUAL, "key features checked by hand"),
    _post("database", Check.DATABASE, "database connectivity"),
    _post("external-apis", Check.HTTP, "external API connectivity"),
    # CHK-3 metrics
    _post("error-logs", Check.LOGS, "error logs checked (15 min)"),
    _post("performance", Check.PERFORMANCE, "performance metrics checked (30 min)"),
    _post("user-feedback", Check.MANUAL, "user feedback watched"),
    _post("business-kpis", Check.MANUAL, "business KPIs checked"),
    # CHK-3 records: the completion report carries incidents, lessons and hand-over notes.
    _post("completion-report", Check.REPORT, "completion report written"),
)

_BY_NAME = {d.name: d for d in DEFAULT_ITEMS}


def default_item(name: str) -> ItemDefault | None:
    return _BY_NAME.get(name)


@dataclass(frozen=True, slots=True)
class ItemState:
    """An item as a gate sees it: its definition's essentials and its status."""

    name: str
    stage: Stage
    kind: ItemKind
    status: ItemStatus
    on_failure: OnFailure
    title: str = ""
    summary: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    by: str = ""
    note: str = ""
    # False for an item that is pending by design (the deployment notice before the deploy
    # sends it): shown as pending, never what keeps the gate shut.
    holds: bool = True

    @property
    def blocking(self) -> bool:
        """Whether this item keeps its gate shut."""
        return self.holds and self.status in (ItemStatus.FAILED, ItemStatus.PENDING)

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.name,
            "stage": self.stage.value,
            "kind": self.kind.value,
            "status": self.status.value,
            "on_failure": self.on_failure.value,
            "title": self.title,
            "summary": self.summary,
            "evidence": dict(self.evidence),
            "source": self.source,
            "by": self.by,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class GateOutcome:
    """A stage's items and whether the gate is open."""

    stage: Stage
    items: tuple[ItemState, ...]

    @property
    def failing(self) -> tuple[ItemState, ...]:
        return tuple(i for i in self.items if i.blocking)

    @property
    def passed(self) -> bool:
        return not self.failing

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage.value,
            "passed": self.passed,
            "failing": [i.name for i in self.failing],
            "items": [i.to_json() for i in self.items],
        }


def judge_gate(
    stage: Stage,
    verdicts: Iterable[ItemVerdict],
    *,
    manual: Sequence[tuple[str, bool]] = (),
    signed: Mapping[str, tuple[str, str]] | None = None,
    overrides: Mapping[str, tuple[str, str]] | None = None,
    actions: Mapping[str, OnFailure] | None = None,
    titles: Mapping[str, str] | None = None,
) -> GateOutcome:
    """The gate of ``stage`` from automated verdicts and manual items.

    ``manual`` lists ``(name, required)``; ``signed`` maps an item to ``(by, note)``;
    ``overrides`` a failing item to ``(by, reason)``; ``actions`` an item's on-failure action
    (the stage's default otherwise). A failed ``warn`` item does not shut the gate.
    """
    signed = signed or {}
    overrides = overrides or {}
    actions = actions or {}
    titles = titles or {}
    default_action = STAGE_ACTIONS[stage][0]
    items: list[ItemState] = []
    for v in verdicts:
        action = actions.get(v.item, default_action)
        status = ItemStatus.PASSED if v.passed else ItemStatus.FAILED
        by = note = ""
        if not v.passed and v.item in overrides:
            status = ItemStatus.OVERRIDDEN
            by, note = overrides[v.item]
        elif not v.passed and action is OnFailure.WARN:
            status = ItemStatus.WARNED
        items.append(
            ItemState(
                name=v.item,
                stage=stage,
                kind=ItemKind.AUTOMATED,
                status=status,
                on_failure=action,
                title=titles.get(v.item, ""),
                summary=v.summary,
                evidence=v.evidence,
                source=v.source,
                by=by,
                note=note,
            )
        )
    for name, required in manual:
        action = actions.get(name, default_action)
        if name in signed:
            by, note = signed[name]
            status, summary = ItemStatus.SIGNED, f"signed off by {by}"
        elif name in overrides:
            by, note = overrides[name]
            status, summary = ItemStatus.OVERRIDDEN, "not signed off"
        elif not required:
            by = note = ""
            status, summary = ItemStatus.NOT_REQUIRED, "not signed off (optional)"
        elif action is OnFailure.WARN:
            by = note = ""
            status, summary = ItemStatus.WARNED, "not signed off"
        else:
            by = note = ""
            status, summary = ItemStatus.PENDING, "not signed off"
        items.append(
            ItemState(
                name=name,
                stage=stage,
                kind=ItemKind.MANUAL,
                status=status,
                on_failure=action,
                title=titles.get(name, ""),
                summary=summary,
                by=by,
                note=note,
            )
        )
    return GateOutcome(stage=stage, items=tuple(items))
