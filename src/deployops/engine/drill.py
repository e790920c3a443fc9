"""Disaster-recovery drills (DR-7) with measured RTO and RPO.

A drill writes a marker row through the application every second, injects the failure, runs
the recovery, and measures:

* **RTO**: from the failure to the first marker the application accepts again (healthy
  and serving, not merely "the database is up");
* **RPO**: the last marker committed before the failure against the last of those still
  present afterwards.

It checks that the notifications were delivered and writes a report (Markdown and JSON)
against the policy's targets. The world is reached through ports and two small callables
(:class:`Markers`); the scenario's failure and recovery are functions of the ports.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from deployops.clock import Clock
from deployops.domain.backup import (
    DrillOutcome,
    DrillScenario,
    achieved_rpo_s,
    achieved_rto_s,
    judge_drill,
)
from deployops.domain.plan import Plan, Step, register_step_type
from deployops.engine.operation import HandlerTable, OperationKind, StepContext, stop_on_failure
from deployops.errors import ConfigError, DeployopsError
from deployops.store import OperationRecord

__all__ = [
    "DRILL_HANDLERS",
    "DRILL_KIND",
    "DrillReport",
    "DrillSite",
    "InjectFailure",
    "MarkerLog",
    "MarkerWriter",
    "Markers",
    "MeasureDrill",
    "PrepareDrill",
    "RedeployService",
    "RotateAllSecrets",
    "plan_drill",
    "render_markdown",
    "run_drill",
    "write_report",
]


class Markers(Protocol):
    """Writes and reads marker rows through the application (``POST /items``)."""

    def write(self, body: str) -> datetime | None:
        """The row's commit time, or ``None`` when the application refused or failed."""
        ...

    def present(self, prefix: str) -> list[tuple[str, datetime]]:
        """Every marker row whose body starts with ``prefix``, with its commit time."""
        ...


@dataclass
class MarkerLog:
    """What the writer saw: (sequence, sent at, committed at or None)."""

    rows: list[tuple[int, datetime, datetime | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def committed(self) -> list[tuple[int, datetime, datetime]]:
        with self.lock:
            return [(n, s, c) for n, s, c in self.rows if c is not None]

    def first_ok_after(self, moment: datetime) -> datetime | None:
        with self.lock:
            oks = [s for _n, s, c in self.rows if c is not None and s >= moment]
        return min(oks) if oks else None


class MarkerWriter:
    """A background thread writing ``{prefix}{n}`` every ``interval_s`` until stopped."""

    def __init__(
        self, markers: Markers, *, prefix: str, clock: Clock, interval_s: float = 1.0
    ) -> None:
        self.markers = markers
        self.prefix = prefix
        self.clock = clock
        self.interval_s = interval_s
        self.log = MarkerLog()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-markers", daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            sent = self.clock.now()
            try:
                committed = self.markers.write(f"{self.prefix}{n}")
            except Exception:  # noqa: BLE001 - a failed write is a measurement, not a crash
                committed = None
            with self.log.lock:
                self.log.rows.append((n, sent, committed))
            self._stop.wait(self.interval_s)

    def start(self) -> MarkerWriter:
        self._thread.start()
        return self

    def stop(self) -> MarkerLog:
        self._stop.set()
        self._thread.join(timeout=30)
        return self.log

    def wait_committed(self, count: int, *, timeout_s: float) -> bool:
        deadline = self.clock.monotonic() + timeout_s
        while self.clock.monotonic() < deadline:
            if len(self.log.committed()) >= count:
                return True
            self.clock.sleep(0.1)
        return False


@dataclass(frozen=True)
class DrillReport:
    drill_id: str
    scenario: DrillScenario
    environment: str
    started_at: datetime
    failure_at: datetime | None
    recovered_at: datetime | None
    outcome: DrillOutcome
    recovery: dict[str, Any]
    markers_written: int
    markers_committed: int
    last_committed_before_failure: datetime | None
    last_present_after: datetime | None
    notifications: list[str]
    notes: tuple[str, ...] = ()
    runbook: str = ""

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["scenario"] = self.scenario.value
        doc["outcome"] = {
            **asdict(self.outcome),
            "scenario": self.scenario.value,
            "rto_met": self.outcome.rto_met,
            "rpo_met": self.outcome.rpo_met,
            "passed": self.outcome.passed,
        }
        return json.loads(json.dumps(doc, default=str))  # type: ignore[no-any-return]


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "not measured"
    if seconds == float("inf"):
        return "everything lost"
    return f"{seconds:.1f} s"


def render_markdown(r: DrillReport) -> str:
    o = r.outcome
    verdict = "PASSED" if o.passed else "FAILED"
    lines = [
        f"# Drill {r.drill_id}: {r.scenario.value} ({verdict})",
        "",
        f"- environment: {r.environment}",
        f"- started: {r.started_at.isoformat()}",
        f"- failure injected: {r.failure_at.isoformat() if r.failure_at else '-'}",
        f"- serving again: {r.recovered_at.isoformat() if r.recovered_at else '-'}",
        f"- runbook: {r.runbook or '-'}",
        "",
        "| measure | achieved | target | met |",
        "|---|---|---|---|",
        f"| RTO (failure to serving) | {_fmt(o.rto_s)} | {o.rto_target_s:.0f} s | "
        f"{'yes' if o.rto_met else 'NO'} |",
        f"| RPO (data lost) | {_fmt(o.rpo_s)} | {o.rpo_target_s:.0f} s | "
        f"{'yes' if o.rpo_met else 'NO'} |",
        f"| notifications delivered | {len(r.notifications)} | at least 1 | "
        f"{'yes' if o.notified else 'NO'} |",
        "",
        f"Markers: {r.markers_written} written, {r.markers_committed} committed; last committed "
        f"before the failure {r.last_committed_before_failure or '-'}, last present after "
        f"{r.last_present_after or '-'}.",
        "",
    ]
    if o.problems:
        lines += ["## Problems", "", *(f"- {p}" for p in o.problems), ""]
    if r.notes:
        lines += ["## Notes", "", *(f"- {n}" for n in r.notes), ""]
    if r.recovery:
        lines += ["## Recovery", "", "```json", json.dumps(r.recovery, indent=2, default=str)]
        lines += ["```", ""]
    return "\n".join(lines)


def _achieved(
    markers: Markers,
    prefix: str,
    failure_at: datetime | None,
    recovered_at: datetime | None,
    last_before: datetime | None,
    rto_target_s: float,
    rpo_target_s: float,
    problems: list[str],
) -> tuple[datetime | None, float | None, float | None, str]:
    """The markers still present after the recovery, the achieved RTO and RPO, and the line
    that says them against their targets (a failure to read the markers back is a problem)."""
    try:
        present_rows = markers.present(prefix)
    except Exception as exc:  # noqa: BLE001 - the report says what failed
        present_rows = []
        problems.append(f"could not read the markers back: {exc}")
    present_before = [c for _b, c in present_rows if failure_at is not None and c <= failure_at]
    last_present = max(present_before) if present_before else None
    rto = (
        achieved_rto_s(failure_at=failure_at, serving_at=recovered_at)
        if failure_at and recovered_at
        else None
    )
    rpo = (
        achieved_rpo_s(last_before_failure=last_before, last_present=last_present)
        if recovered_at is not None
        else None
    )
    text = (
        f"RTO {_fmt(rto)} (target {rto_target_s:.0f} s), RPO {_fmt(rpo)} "
        f"(target {rpo_target_s:.0f} s)"
    )
    return last_present, rto, rpo, text


def run_drill(
    *,
    drill_id: str,
    scenario: DrillScenario,
    environment: str,
    clock: Clock,
    markers: Markers,
    inject: Callable[[], dict[str, Any]],
    recover: Callable[[datetime], dict[str, Any]],
    notify: Callable[[str, str, str], Sequence[str]],
    rto_target_s: float,
    rpo_target_s: float,
    wait_serving_s: float = 600.0,
    marker_interval_s: float = 1.0,
    notes: Sequence[str] = (),
    runbook: str = "",
    progress: Callable[[str], None] = lambda _m: None,
    make_durable: Callable[[], object] = lambda: None,
) -> DrillReport:
    """Run one drill. ``inject()`` causes the failure; ``recover(failure_at)`` runs the
    recovery; ``notify(severity, title, text)`` returns the channels that confirmed delivery.
    Failures of the recovery are recorded in the report (the drill itself does not raise)."""
    started = clock.now()
    prefix = f"{drill_id}-"
    writer = MarkerWriter(markers, prefix=prefix, clock=clock, interval_s=marker_interval_s)
    writer.start()
    problems: list[str] = []
    delivered: list[str] = []
    failure_at: datetime | None = None
    recovered_at: datetime | None = None
    recovery: dict[str, Any] = {}
    try:
        progress("writing marker rows every second")
        if not writer.wait_committed(3, timeout_s=30):
            problems.append("the application did not accept marker rows before the failure")
        # The first markers are made durable (WAL switched and archived) so the data loss is
        # measured from a point known to be in the backups, not from nothing.
        make_durable()
        writer.wait_committed(len(writer.log.committed()) + 2, timeout_s=30)
        progress(f"injecting the failure: {scenario.value}")
        failure_at = clock.now()
        recovery["injected"] = inject()
        delivered += notify(
            "critical",
            f"Drill {scenario.value}: failure injected",
            f"Drill {drill_id} in {environment}: recovery starts now.",
        )
        progress("recovering")
        try:
            recovery.update(recover(failure_at))
        except Exception as exc:  # noqa: BLE001 - the report says what failed
            problems.append(f"the recovery failed: {getattr(exc, 'message', str(exc))}")
        # Serving again = the first marker accepted once the recovery is done (a corrupted
        # database still accepts writes: acceptance during the failure proves nothing).
        recovery_done = clock.now()
        deadline = clock.monotonic() + wait_serving_s
        while clock.monotonic() < deadline:
            recovered_at = writer.log.first_ok_after(recovery_done)
            if recovered_at is not None:
                break
            clock.sleep(0.2)
        if recovered_at is None:
            problems.append(f"the service was not serving within {wait_serving_s:.0f}s")
        else:
            writer.wait_committed(len(writer.log.committed()) + 2, timeout_s=10)
    finally:
        log = writer.stop()
    committed = log.committed()
    before = [c for _n, _s, c in committed if failure_at is not None and c <= failure_at]
    last_before = max(before) if before else None
    last_present, rto, rpo, outcome_text = _achieved(
        markers, prefix, failure_at, recovered_at, last_before, rto_target_s, rpo_target_s, problems
    )
    delivered += notify(
        "info" if not problems else "warning",
        f"Drill {scenario.value}: finished",
        f"Drill {drill_id} in {environment}: {outcome_text}",
    )
    outcome = judge_drill(
        scenario,
        rto_s=rto,
        rpo_s=rpo,
        rto_target_s=rto_target_s,
        rpo_target_s=rpo_target_s,
        notified=bool(delivered),
        problems=problems,
    )
    return DrillReport(
        drill_id=drill_id,
        scenario=scenario,
        environment=environment,
        started_at=started,
        failure_at=failure_at,
        recovered_at=recovered_at,
        outcome=outcome,
        recovery=recovery,
        markers_written=len(log.rows),
        markers_committed=len(committed),
        last_committed_before_failure=last_before,
        last_present_after=last_present,
        notifications=sorted(set(delivered)),
        notes=tuple(notes),
        runbook=runbook,
    )


def write_report(report: DrillReport, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    md = folder / f"{report.drill_id}.md"
    js = folder / f"{report.drill_id}.json"
    md.write_text(render_markdown(report))
    js.write_text(json.dumps(report.to_json(), indent=2))
    return md, js


# ---------------------------------------------------------------- the drill as an operation
# A drill runs on the one operation runner like every other kind: locked on the service,
# stored step by step, resumable. Its plan is
#
#     PrepareDrill -> InjectFailure -> <the recovery's own steps> -> MeasureDrill
#
# where the recovery steps are a restore's (engine/restore.py) or a failover's. The marker
# writer lives in the process that runs the drill; a drill resumed in a new process starts a
# new writer, and its RTO is then measured from the stored failure to the first marker the
# resumed run sees accepted (the outage includes the interruption, as it did for users).


@dataclass
class DrillSite:
    """What a drill's steps act through besides the platform's ports (``Ports.extra``):
    the application's marker rows, the notification routes (the channels that confirmed
    delivery), the scenario's failure injection and preparation, where reports go."""

    markers: Markers
    notify: Callable[[str, str, str], Sequence[str]]
    inject: Callable[[DrillScenario], dict[str, Any]]
    prepare: Callable[[DrillScenario], dict[str, Any]]
    make_durable: Callable[[], object]
    reports_dir: Path
    marker_interval_s: float = 1.0
    # security-incident: rotates every managed secret (actor) -> {secret: rotation id}
    rotate_secrets: Callable[[str], dict[str, Any]] | None = None


@register_step_type
@dataclass(frozen=True, slots=True)
class PrepareDrill(Step):
    """A backup to recover from exists; a region-failure drill starts the second site."""

    phase: ClassVar[str] = "prepare"
    scenario: str

    def describe(self) -> str:
        return f"prepare the {self.scenario} drill"


@register_step_type
@dataclass(frozen=True, slots=True)
class InjectFailure(Step):
    """Markers every second, the first ones made durable, then the failure."""

    phase: ClassVar[str] = "inject"
    scenario: str
    drill_id: str

    def describe(self) -> str:
        return f"inject the failure: {self.scenario}"


@register_step_type
@dataclass(frozen=True, slots=True)
class MeasureDrill(Step):
    """Wait for the service to serve again; measure RTO / RPO; notify; write the report."""

    phase: ClassVar[str] = "measure"
    scenario: str
    drill_id: str
    wait_s: float
    rto_target_s: float
    rpo_target_s: float
    runbook: str = ""
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        return "measure the achieved recovery time and data loss"


@register_step_type
@dataclass(frozen=True, slots=True)
class RotateAllSecrets(Step):
    """security-incident: every managed secret is assumed leaked and rotated (each rotation
    locked, stored and resumable on its own: ``deployops secrets resume``)."""

    phase: ClassVar[str] = "recover"
    drill_id: str

    def describe(self) -> str:
        return "rotate every managed secret"


@register_step_type
@dataclass(frozen=True, slots=True)
class RedeployService(Step):
    """Replace every replica of the service (a rolling restart onto a new revision that
    records the incident), so no process keeps a leaked value in memory."""

    phase: ClassVar[str] = "recover"
    service: str
    drill_id: str
    timeout_s: float = 300.0

    def describe(self) -> str:
        return f"redeploy {self.service} with the rotated secrets"


# The marker writers of the drills this process runs, by operation id.
_WRITERS: dict[str, MarkerWriter] = {}
_WRITERS_LOCK = threading.Lock()


def _writer(ctx: StepContext, site: DrillSite, drill_id: str) -> MarkerWriter:
    with _WRITERS_LOCK:
        writer = _WRITERS.get(ctx.op.id)
        if writer is None:
            writer = MarkerWriter(
                site.markers,
                prefix=f"{drill_id}-",
                clock=ctx.clock,
                interval_s=site.marker_interval_s,
            ).start()
            _WRITERS[ctx.op.id] = writer
        return writer


def _stop_writer(op_id: str) -> MarkerLog | None:
    with _WRITERS_LOCK:
        writer = _WRITERS.pop(op_id, None)
    return writer.stop() if writer is not None else None


def prepare_drill(step: PrepareDrill, ctx: StepContext) -> dict[str, Any]:
    site = ctx.ports.get(DrillSite)
    return {"prepared": site.prepare(DrillScenario(step.scenario))}


def inject_failure(step: InjectFailure, ctx: StepContext) -> dict[str, Any]:
    site = ctx.ports.get(DrillSite)
    sc = DrillScenario(step.scenario)
    writer = _writer(ctx, site, step.drill_id)
    problems: list[str] = []
    ctx.progress("writing marker rows every second", 30.0)
    if not writer.wait_committed(3, timeout_s=30):
        problems.append("the application did not accept marker rows before the failure")
    # The first markers are made durable (WAL switched and archived) so the data loss is
    # measured from a point known to be in the backups, not from nothing.
    site.make_durable()
    writer.wait_committed(len(writer.log.committed()) + 2, timeout_s=30)
    ctx.progress(f"injecting the failure: {sc.value}", 0.0)
    failure_at = ctx.clock.now()
    injected = site.inject(sc)
    delivered = list(
        site.notify(
            "critical",
            f"Drill {sc.value}: failure injected",
            f"Drill {step.drill_id} in {ctx.op.environment}: recovery starts now.",
        )
    )
    before = [c for _n, _s, c in writer.log.committed() if c <= failure_at]
    return {
        "failure_at": failure_at.isoformat(),
        "last_committed_before_failure": max(before).isoformat() if before else "",
        "injected": injected,
        "notified_at_failure": delivered,
        "drill_problems": problems,
    }


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def measure(step: MeasureDrill, ctx: StepContext, *, recovery_problem: str = "") -> DrillReport:
    """The drill's report from what the steps stored and the markers the writer saw."""
    site = ctx.ports.get(DrillSite)
    sc = DrillScenario(step.scenario)
    res = ctx.results
    problems = list(res.get("drill_problems", ()))
    if recovery_problem:
        problems.append(f"the recovery failed: {recovery_problem}")
    failure_at = _when(res.get("failure_at"))
    last_before = _when(res.get("last_committed_before_failure"))
    writer = _writer(ctx, site, step.drill_id)
    recovered_at: datetime | None = None
    try:
        # Serving again = the first marker accepted once the recovery is done (a corrupted
        # database still accepts writes: acceptance during the failure proves nothing).
        recovery_done = ctx.clock.now()
        deadline = ctx.clock.monotonic() + step.wait_s
        while ctx.clock.monotonic() < deadline:
            recovered_at = writer.log.first_ok_after(recovery_done)
            if recovered_at is not None:
                break
            ctx.progress("waiting for the service to serve again", deadline - ctx.clock.monotonic())
            ctx.clock.sleep(0.2)
        if recovered_at is None:
            problems.append(f"the service was not serving within {step.wait_s:.0f}s")
        else:
            writer.wait_committed(len(writer.log.committed()) + 2, timeout_s=10)
    finally:
        log = _stop_writer(ctx.op.id) or writer.log
    committed = log.committed()
    last_present, rto, rpo, outcome_text = _achieved(
        site.markers,
        f"{step.drill_id}-",
        failure_at,
        recovered_at,
        last_before,
        step.rto_target_s,
        step.rpo_target_s,
        problems,
    )
    delivered = list(res.get("notified_at_failure", ()))
    delivered += site.notify(
        "info" if not problems else "warning",
        f"Drill {sc.value}: finished",
        f"Drill {step.drill_id} in {ctx.op.environment}: {outcome_text}",
    )
    outcome = judge_drill(
        sc,
        rto_s=rto,
        rpo_s=rpo,
        rto_target_s=step.rto_target_s,
        rpo_target_s=step.rpo_target_s,
        notified=bool(delivered),
        problems=problems,
    )
    recovery: dict[str, Any] = {"operation": ctx.op.id, "injected": res.get("injected", {})}
    recovery["steps"] = {
        s.name: s.status for s in ctx.store.steps_for(ctx.op.id) if s.name != "MeasureDrill"
    }
    return DrillReport(
        drill_id=step.drill_id,
        scenario=sc,
        environment=ctx.op.environment,
        started_at=ctx.op.created_at,
        failure_at=failure_at,
        recovered_at=recovered_at,
        outcome=outcome,
        recovery=recovery,
        markers_written=len(log.rows),
        markers_committed=len(committed),
        last_committed_before_failure=last_before,
        last_present_after=last_present,
        notifications=sorted(set(delivered)),
        notes=tuple(step.notes),
        runbook=step.runbook,
    )


def _record_report(ctx: StepContext, report: DrillReport) -> dict[str, Any]:
    site = ctx.ports.get(DrillSite)
    md, js = write_report(report, site.reports_dir)
    o = report.outcome
    summary = {
        "report_markdown": str(md),
        "report_json": str(js),
        "passed": o.passed,
        "rto_s": o.rto_s,
        "rpo_s": o.rpo_s,
    }
    ctx.update_detail(**summary)
    ctx.event(
        "drill.finished",
        f"drill {report.drill_id} {report.scenario.value}: " + ("passed" if o.passed else "failed"),
        level="info" if o.passed else "warning",
        data={"report": str(js), "rto_s": str(o.rto_s), "rpo_s": str(o.rpo_s)},
    )
    return summary


def rotate_all_secrets(step: RotateAllSecrets, ctx: StepContext) -> dict[str, Any]:
    site = ctx.ports.get(DrillSite)
    if site.rotate_secrets is None:
        raise ConfigError(
            "this environment's secret store cannot rotate",
            path="secrets.stores",
            hint="use a rotating store (encrypted-file, aws-secrets-manager, kubernetes) "
            "for the environment under secrets.stores in deployops.yaml",
        )
    ctx.progress("rotating every managed secret", 0.0)
    return {"rotated": site.rotate_secrets(f"drill {step.drill_id}")}


def redeploy_service(step: RedeployService, ctx: StepContext) -> dict[str, Any]:
    from deployops.engine.restore import roll_service

    return roll_service(
        ctx, step.service, {"DEPLOYOPS_INCIDENT": step.drill_id}, timeout_s=step.timeout_s
    )


def measure_drill(step: MeasureDrill, ctx: StepContext) -> dict[str, Any]:
    return _record_report(ctx, measure(step, ctx))


def _drill_failed(ctx: StepContext, step: Step, exc: DeployopsError) -> OperationRecord:
    """A failed recovery is a drill result: measured and reported, then the operation fails.
    A failure before the injection (no database, no backup) fails as any operation does."""
    measure_step = next((s for s in ctx.plan.steps if isinstance(s, MeasureDrill)), None)
    if (
        measure_step is not None
        and "failure_at" in ctx.results
        and not isinstance(step, MeasureDrill)
    ):
        _record_report(ctx, measure(measure_step, ctx, recovery_problem=exc.message))
    else:
        _stop_writer(ctx.op.id)
    return stop_on_failure(ctx, step, exc)


DRILL_HANDLERS = HandlerTable()
DRILL_HANDLERS.register(PrepareDrill, prepare_drill)
DRILL_HANDLERS.register(InjectFailure, inject_failure)
DRILL_HANDLERS.register(MeasureDrill, measure_drill)
DRILL_HANDLERS.register(RotateAllSecrets, rotate_all_secrets)
DRILL_HANDLERS.register(RedeployService, redeploy_service)

DRILL_KIND = OperationKind(
    name="drill",
    id_prefix="drl",
    on_failure=_drill_failed,
    describe=lambda op: f"drill {op.id}: {op.plan.get('strategy', '')}",
)


def plan_drill(
    *,
    drill_id: str,
    scenario: DrillScenario,
    service: str,
    recovery: Sequence[Step],
    wait_s: float,
    rto_target_s: float,
    rpo_target_s: float,
    runbook: str,
    notes: Sequence[str] = (),
    reason: str = "",
) -> Plan:
    """Prepare, inject, the recovery's own steps, measure: every setting frozen in."""
    steps: tuple[Step, ...] = (
        PrepareDrill(scenario=scenario.value),
        InjectFailure(scenario=scenario.value, drill_id=drill_id),
        *recovery,
        MeasureDrill(
            scenario=scenario.value,
            drill_id=drill_id,
            wait_s=wait_s,
            rto_target_s=rto_target_s,
            rpo_target_s=rpo_target_s,
            runbook=runbook,
            notes=tuple(notes),
        ),
    )
    return Plan(
        strategy=scenario.value,
        steps=steps,
        target_group="",
        previous_target_group="",
        settings={"reason": reason, "service": service},
    )
