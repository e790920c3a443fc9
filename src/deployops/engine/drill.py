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
from typing import Any, Protocol

from deployops.clock import Clock
from deployops.domain.backup import (
    DrillOutcome,
    DrillScenario,
    achieved_rpo_s,
    achieved_rto_s,
    judge_drill,
)

__all__ = [
    "DrillReport",
    "MarkerLog",
    "MarkerWriter",
    "Markers",
    "render_markdown",
    "run_drill",
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
    try:
        present_rows = markers.present(prefix)
    except Exception as exc:  # noqa: BLE001
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
    outcome_text = (
        f"RTO {_fmt(rto)} (target {rto_target_s:.0f} s), RPO {_fmt(rpo)} "
        f"(target {rpo_target_s:.0f} s)"
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
