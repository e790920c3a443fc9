"""Running the checklist's automated items and reading its gates (CHK-1..CHK-3).

The pre-deploy gate (CHK-1) judges the artefacts a CI wrote (paths relative to
``deployops.yaml``) with the pure evaluators of ``domain/artefacts.py``, and the manual items
from their stored sign-offs. An artefact that cannot be judged fails its item with the reason;
it never passes by default.

    gate = ChecklistGate(items=settings.items(Stage.PRE), root=project.root)
    outcome = gate.pre_gate(store.checklist_entries(environment="staging", service="web",
                                                    version="1.4.0", unlinked=True))
    outcome.passed, [i.name for i in outcome.failing]
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from deployops.clock import Clock
from deployops.config.checklist import ResolvedItem
from deployops.domain.artefacts import (
    Severity,
    approvals_from_file,
    approvals_from_github,
    approvals_from_trailers,
    approvals_verdict,
    coverage_verdict,
    junit_verdict,
    lint_verdict,
    security_findings,
    security_verdict,
)
from deployops.domain.checklist import (
    ArtefactError,
    Check,
    GateOutcome,
    ItemKind,
    ItemState,
    ItemStatus,
    ItemVerdict,
    Stage,
    judge_gate,
)
from deployops.errors import DeployopsError
from deployops.store import ChecklistEntry, DeploymentRecord, EventRecord, StateStore

__all__ = [
    "SIGNED_STATUSES",
    "ChecklistGate",
    "FetchPull",
    "ReadCommit",
    "latest_by_item",
    "stage_state",
]

# (pull request, reviews) of a GitHub pull request: ``fetch(github_options)``.
FetchPull = Callable[[Mapping[str, Any]], tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]]
# ("Name <email>", message) of a commit: ``read(ref)``.
ReadCommit = Callable[[str], tuple[str, str]]

SIGNED_STATUSES = ("signed",)


@dataclass
class ChecklistGate:
    """The automated items of one stage, judged against the project's artefacts."""

    items: Sequence[ResolvedItem]
    root: Path
    fetch_pull: FetchPull | None = None
    read_commit: ReadCommit | None = None

    # ------------------------------------------------------------------ pre (CHK-1)
    def pre_verdicts(self) -> list[ItemVerdict]:
        """A verdict for every automated pre item but the deployment notice (sent when the
        deploy starts)."""
        out = []
        for it in self.items:
            if it.kind is not ItemKind.AUTOMATED or it.check is Check.NOTICE:
                continue
            out.append(self.judge(it))
        return out

    def judge(self, item: ResolvedItem) -> ItemVerdict:
        """One automated item; a problem with its artefact is a failed verdict naming it."""
        try:
            return self._judge(item)
        except ArtefactError as exc:
            return ItemVerdict(
                item.name,
                False,
                f"{exc.source}: {exc.message}",
                {"error": exc.message},
                exc.source,
            )
        except DeployopsError as exc:
            return ItemVerdict(
                item.name, False, str(exc).replace("\n  fix:", "; fix:"), {"error": exc.message}
            )

    def _judge(self, item: ResolvedItem) -> ItemVerdict:
        o = item.options
        name = item.name
        if item.check is Check.JUNIT:
            text, src = self._read(name, "file", o["file"])
            return junit_verdict(
                text,
                source=src,
                item=name,
                suite=o.get("suite"),
                exclude_suites=tuple(o.get("exclude_suites") or ()),
            )
        if item.check is Check.COVERAGE:
            text, src = self._read(name, "file", o["file"])
            return coverage_verdict(
                text,
                source=src,
                item=name,
                threshold=float(o["threshold"]),
                metric=str(o["metric"]),
                package=o.get("package"),
                project_root=str(self.root.resolve()),
            )
        if item.check is Check.LINT:
            text, src = self._read(name, "file", o["file"])
            return lint_verdict(text, source=src, item=name)
        if item.check is Check.SECURITY:
            return self._security(item)
        if item.check is Check.APPROVALS:
            return self._approvals(item)
        raise ArtefactError(
            f"{item.check.value} items are judged while deploying, not from an artefact",
            item=name,
            source="deployops.yaml",
        )

    def _read(self, item: str, key: str, rel: str) -> tuple[bytes, str]:
        path = self.root / rel
        if not path.is_file():
            raise ArtefactError(
                f"does not exist; let CI write it there, or point "
                f"checklist.pre.{item}.{key} at the report",
                item=item,
                source=rel,
            )
        return path.read_bytes(), rel

    def _security(self, item: ResolvedItem) -> ItemVerdict:
        o = item.options
        files: list[str] = []
        for pattern in o["files"]:
            if glob.has_magic(pattern):
                found = sorted(glob.glob(str(self.root / pattern)))
                files += [str(Path(f).relative_to(self.root)) for f in found]
            else:
                files.append(pattern)
        if not files:
            raise ArtefactError(
                "no security report found; let CI write pip-audit, trivy, checkov or SARIF "
                f"reports there, or set checklist.pre.{item.name}.files",
                item=item.name,
                source=", ".join(o["files"]),
            )
        reports = []
        for rel in dict.fromkeys(files):
            text, src = self._read(item.name, "files", rel)
            tool, findings = security_findings(text, source=src, item=item.name)
            reports.append((src, tool, findings))
        unknown = str(o.get("unknown_severity", "high"))
        return security_verdict(
            reports,
            item=item.name,
            max_critical=int(o["max_critical"]),
            max_high=int(o["max_high"]),
            unknown_as=Severity.UNKNOWN if unknown == "ignore" else Severity.parse(unknown),
        )

    def _approvals(self, item: ResolvedItem) -> ItemVerdict:
        o = item.options
        minimum = int(o["minimum"])
        if o["source"] == "file":
            text, src = self._read(item.name, "file", o["file"])
            author, found = approvals_from_file(text, source=src, item=item.name)
            return approvals_verdict(
                found, source=src, item=item.name, minimum=minimum, author=author
            )
        if o["source"] == "git":
            if self.read_commit is None:
                raise ArtefactError(
                    "git is not available here", item=item.name, source=str(o["git_ref"])
                )
            author, message = self.read_commit(str(o["git_ref"]))
            src = f"git {o['git_ref']}"
            found = approvals_from_trailers(message, author=author, source=src, item=item.name)
            return approvals_verdict(
                found, source=src, item=item.name, minimum=minimum, author=author
            )
        gh = o.get("github") or {}
        src = f"github {gh.get('repo')}#{gh.get('pull')}"
        if self.fetch_pull is None:
            raise ArtefactError("no GitHub client configured", item=item.name, source=src)
        pull, reviews = self.fetch_pull(gh)
        author, found, blocked = approvals_from_github(pull, reviews)
        return approvals_verdict(
            found,
            source=src,
            item=item.name,
            minimum=minimum,
            author=author,
            changes_requested=blocked,
        )

    # ------------------------------------------------------------------ gates
    def pre_gate(
        self,
        entries: Sequence[ChecklistEntry],
        *,
        overrides: Mapping[str, tuple[str, str]] | None = None,
        notice: ItemVerdict | None = None,
    ) -> GateOutcome:
        """The pre-deploy gate: automated verdicts now, manual items from ``entries`` (the
        release's sign-offs), ``overrides`` (item -> (admin, reason)). The deployment notice
        counts only once sent (``notice``); until then it shows as pending and does not shut
        the gate."""
        verdicts = self.pre_verdicts()
        if notice is not None:
            verdicts.append(notice)
        outcome = judge_gate(
            Stage.PRE,
            verdicts,
            manual=[(i.name, i.required) for i in self.items if i.kind is ItemKind.MANUAL],
            signed=_signed(entries),
            overrides=overrides,
            actions={i.name: i.on_failure for i in self.items},
            titles={i.name: i.title for i in self.items},
        )
        if notice is None:
            # Pending until the deploy sends it: shown, but never what holds a deploy back.
            pending = tuple(
                ItemState(
                    name=i.name,
                    stage=Stage.PRE,
                    kind=ItemKind.AUTOMATED,
                    status=ItemStatus.PENDING,
                    on_failure=i.on_failure,
                    title=i.title,
                    summary="sent when the deploy starts",
                    holds=False,
                )
                for i in self.items
                if i.check is Check.NOTICE
            )
            order = {i.name: n for n, i in enumerate(self.items)}
            outcome = GateOutcome(
                stage=Stage.PRE,
                items=tuple(
                    sorted(outcome.items + pending, key=lambda s: order.get(s.name, len(order)))
                ),
            )
        return outcome

    def blocking(self, outcome: GateOutcome) -> tuple[ItemState, ...]:
        """The items that refuse a deploy."""
        return outcome.failing


def _signed(entries: Sequence[ChecklistEntry]) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for e in entries:
        if e.status in SIGNED_STATUSES:
            out[e.item] = (e.actor, e.note)
    return out


def latest_by_item(entries: Sequence[ChecklistEntry]) -> dict[str, ChecklistEntry]:
    """The newest entry of each item (entries come oldest first); decisions and notes are
    kept apart from verdicts by their status."""
    out: dict[str, ChecklistEntry] = {}
    for e in entries:
        if e.status == "decided":
            continue
        out[e.item] = e
    return out


def stage_state(
    items: Sequence[ResolvedItem], entries: Sequence[ChecklistEntry], stage: Stage
) -> GateOutcome:
    """A stage as stored for a deployment: each item's newest entry, pending without one."""
    latest = latest_by_item([e for e in entries if e.stage == stage.value])
    states: list[ItemState] = []
    for it in items:
        if it.stage is not stage:
            continue
        e = latest.get(it.name)
        if e is None:
            status = (
                ItemStatus.NOT_REQUIRED
                if it.kind is ItemKind.MANUAL and not it.required
                else ItemStatus.PENDING
            )
            states.append(
                ItemState(
                    name=it.name,
                    stage=stage,
                    kind=it.kind,
                    status=status,
                    on_failure=it.on_failure,
                    title=it.title,
                    summary="not signed off" if it.kind is ItemKind.MANUAL else "not judged yet",
                )
            )
            continue
        states.append(
            ItemState(
                name=it.name,
                stage=stage,
                kind=it.kind,
                status=ItemStatus(e.status),
                on_failure=it.on_failure,
                title=it.title,
                summary=e.summary,
                evidence=e.evidence,
                source=e.source,
                by=e.actor,
                note=e.note,
            )
        )
    return GateOutcome(stage=stage, items=tuple(states))


# ---------------------------------------------------------------------- during (CHK-2)
def _running(store: StateStore, environment: str, service: str) -> DeploymentRecord | None:
    found = store.list_deployments(
        environment=environment, service=service, status=["running"], limit=1
    )
    return found[0] if found else None


def during_recorder(
    store: StateStore, clock: Clock, environment: str, service: str
) -> Callable[[str, str, str, Mapping[str, Any]], None]:
    """Keep a during-deploy item's change of state with the running deployment."""

    def record(item: str, status: str, summary: str, evidence: Mapping[str, Any]) -> None:
        rec = _running(store, environment, service)
        if rec is None:
            return
        store.add_checklist_entry(
            ChecklistEntry(
                ts=clock.now(),
                environment=environment,
                service=service,
                version=rec.version,
                deployment_id=rec.id,
                stage="during",
                item=item,
                status=status,
                summary=summary,
                source=str(evidence.get("scope", "")),
                evidence=dict(evidence),
            )
        )
        if status == "held":
            store.add_event(
                EventRecord(
                    ts=clock.now(),
                    kind="checklist.held",
                    level="warning",
                    deployment_id=rec.id,
                    environment=environment,
                    service=service,
                    message=f"{rec.id} is held: {item}: {summary}; decide with "
                    f"`deployops checklist decide {rec.id} --continue` or `--rollback`",
                    data={"item": item, **dict(evidence)},
                )
            )

    return record


def hold_decision(
    store: StateStore, environment: str, service: str
) -> Callable[[datetime], str | None]:
    """The decision on the running deployment's hold made after ``since``, if any."""

    def decision(since: datetime) -> str | None:
        rec = _running(store, environment, service)
        if rec is None:
            return None
        for e in reversed(store.checklist_entries(deployment_id=rec.id, stage="during")):
            if e.ts < since:
                break
            if e.status == "decided":
                return str(e.evidence.get("decision", ""))
        return None

    return decision


MILESTONES = {
    "task-definition-registered": ("RegisterTaskDefinition", "UseTaskDefinition"),
    "containers-started": ("StartService", "RollingUpdate"),
    "health-passed": ("WaitHealthy", "RollingUpdate"),
    "traffic-switched": ("CheckTrafficMoved", "SwitchListener"),
}


def deployment_entry(
    rec: DeploymentRecord,
    *,
    stage: str,
    item: str,
    status: str,
    summary: str,
    now: datetime,
    evidence: Mapping[str, Any] | None = None,
    source: str = "",
) -> ChecklistEntry:
    """A checklist entry of deployment ``rec`` (its environment, service, version and id)."""
    return ChecklistEntry(
        ts=now,
        environment=rec.environment,
        service=rec.service,
        version=rec.version,
        deployment_id=rec.id,
        stage=stage,
        item=item,
        status=status,
        summary=summary,
        source=source,
        evidence=dict(evidence or {}),
    )


def milestone_entries(
    rec: DeploymentRecord, steps: Sequence[Any], items: Sequence[ResolvedItem], now: datetime
) -> list[ChecklistEntry]:
    """CHK-2's four milestones read from the deployment's stored steps."""
    out = []
    for it in items:
        names = MILESTONES.get(it.name)
        if names is None:
            continue
        found = [s for s in steps if s.name in names]
        if not found:
            status, summary, ev = "failed", "never reached", {}
        else:
            s = found[0] if it.name != "traffic-switched" else found[-1]
            ok = s.status == "succeeded"
            status = "passed" if ok else "failed"
            at = s.finished_at.isoformat() if s.finished_at else ""
            summary = f"{s.name} {s.status}" + (f" at {at}" if at else "")
            if s.error:
                summary += f": {s.error}"
            ev = {"step": s.name, "seq": s.seq, "status": s.status, "finished_at": at}
        out.append(
            deployment_entry(
                rec,
                stage="during",
                item=it.name,
                status=status,
                summary=summary,
                now=now,
                evidence=ev,
            )
        )
    return out
