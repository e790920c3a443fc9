"""The controller: the long-running scheduler behind ``deployops serve``.

It keeps watching after the CLI has exited. Each :meth:`Controller.tick` runs what is due:

- alarm evaluation every alarm period (MON-1), with its actions;
- the target-tracking autoscaler every policy period (IAC-5);
- deferred jobs, e.g. deleting the previous target group 24 h after a deploy (DEP-4);
- pruning the measurements of deployments older than ``measurements_retention_s`` (hourly).
- the watch after the switch: the live version judged by the rollback rules after its
  stability window, rolled back when one breaks (:mod:`deployops.engine.watch_after`).
- notices a command could not deliver (a receiver down or hanging), retried with backoff
  until delivered or expired (``redeliver``, see :mod:`deployops.notify.outbox`).
- self-contained loops handed in as ``loops`` (the disaster-recovery schedule: backup
  freshness, test restores, quarterly drills, ``engine/dr_schedule.py``).

At :meth:`Controller.start` it puts back jobs claimed by a controller that died (SIGKILL) and
resumes interrupted deployments whose owner no longer runs. With a :class:`LeaderLease`,
several controllers can share one store: only the lease holder ticks its loops, and a standby
does that recovery when it takes the lease over. Jobs are rows in the store, claimed
atomically, and their handlers are idempotent (look first, then act), so a restart neither
loses nor repeats one.

    controller = Controller(store=store, clock=clock, environment="production",
                            traffic=plat.traffic, compute=plat.compute,
                            evaluator=evaluator, autoscaler=autoscaler, resume=deployer.resume)
    controller.start()
    controller.run(stop_event)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from deployops.clock import Clock
from deployops.domain.names import lock_key
from deployops.engine.alarms import AlarmEvaluator
from deployops.engine.autoscaler import Autoscaler
from deployops.engine.cleanup import JOB_DELETE_TARGET_GROUP, WAITING, JobOutcome, run_deletion
from deployops.engine.lease import LeaderLease
from deployops.engine.watch_after import AfterSwitchWatch
from deployops.errors import DeployopsError
from deployops.ports import Compute, Traffic
from deployops.store import EventRecord, JobRecord, StateStore

__all__ = ["Controller", "JobHandler", "JobOutcome", "LoopStats"]

log = logging.getLogger(__name__)


JobHandler = Callable[[JobRecord], JobOutcome]
Resume = Callable[[str], object]  # deployment id -> resumes it (raises DeployopsError)


@dataclass
class LoopStats:
    """Timings of one of the controller's loops, for ``/metrics``."""

    runs: int = 0
    errors: int = 0
    seconds_total: float = 0.0
    last_seconds: float = 0.0
    last_run: float | None = None  # clock.now() as POSIX seconds


# Loops that may wait on the network for long (a receiver that hangs answers only at its
# timeout): each runs on a thread of its own so alarms and jobs keep their pace.
_BACKGROUND = frozenset({"notices"})


@dataclass
class _Schedule:
    every_s: float
    next_at: float = 0.0  # monotonic


@dataclass
class Controller:
    store: StateStore
    clock: Clock
    environment: str
    traffic: Traffic
    compute: Compute
    worker: str
    evaluator: AlarmEvaluator | None = None
    autoscaler: Autoscaler | None = None
    resume: Resume | None = None
    owner_alive: Callable[[str], bool] = lambda _owner: True
    job_interval_s: float = 5.0
    # SEC-3: rotates the managed secrets that are due (wiring.build_controller)
    rotations: Callable[[], object] | None = None
    rotation_interval_s: float = 3600.0
    # MON-2 / DEP-7: retries the notices parked in the store (wiring.build_controller)
    redeliver: Callable[[], object] | None = None
    redeliver_interval_s: float = 5.0
    tick_s: float = 1.0
    handlers: Mapping[str, JobHandler] = field(default_factory=dict)
    stats: dict[str, LoopStats] = field(default_factory=dict)
    # None: this controller is the only one and always acts.
    lease: LeaderLease | None = None
    # rollback.measurements_retention: observed windows and judgements older are pruned
    measurements_retention_s: float | None = None
    measurements_prune_s: float = 3600.0
    # RB-1 after the stability window (wiring.build_controller)
    watch: AfterSwitchWatch | None = None
    # Self-contained loops by name: (every seconds, what runs), e.g. the disaster-recovery
    # schedule's (engine/dr_schedule.py: backup freshness, test restores, drills).
    loops: Mapping[str, tuple[float, Callable[[], object]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._handlers: dict[str, JobHandler] = {
            JOB_DELETE_TARGET_GROUP: self.delete_target_group,
            **self.handlers,
        }
        self._schedules: dict[str, _Schedule] = {"jobs": _Schedule(self.job_interval_s)}
        if self.evaluator is not None:
            self._schedules["alarms"] = _Schedule(float(self.evaluator.period_s))
        if self.autoscaler is not None:
            self._schedules["autoscaler"] = _Schedule(float(self.autoscaler.policy.period_s))
        if self.rotations is not None:
            self._schedules["rotations"] = _Schedule(self.rotation_interval_s)
        if self.measurements_retention_s is not None:
            self._schedules["measurements"] = _Schedule(self.measurements_prune_s)
        if self.watch is not None:
            self._schedules["watch"] = _Schedule(self.watch.every_s)
        if self.redeliver is not None:
            self._schedules["notices"] = _Schedule(self.redeliver_interval_s)
        for name, (every_s, _fn) in self.loops.items():
            self._schedules[name] = _Schedule(float(every_s))
        for name in self._schedules:
            self.stats.setdefault(name, LoopStats())
        self.started = False
        self.last_tick: float | None = None  # monotonic
        self.leading = self.lease is None
        self._recovered = False
        self._background: dict[str, threading.Thread] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Recover from a previous controller's death: release its jobs, resume deployments.
        A standby (another controller holds the lease) does this when it takes over."""
        if self._lead():
            self._recover()
        self.started = True

    def _lead(self) -> bool:
        """Hold or renew the lease; events when leadership changes hands."""
        if self.lease is None:
            return True
        was = self.leading
        self.leading = self.lease.hold()
        if self.leading and not was:
            self._event("controller.leading", f"{self.worker} is now the acting controller")
        elif was and not self.leading:
            self._recovered = False
            self._event(
                "controller.standby",
                f"{self.worker} lost the lease to {self.lease.leader}; standing by",
                level="warning",
            )
        return self.leading

    def _recover(self) -> None:
        self._recovered = True
        for job in self.store.release_stale_jobs(alive=self.owner_alive):
            self._event(
                "controller.job_released",
                f"job {job.id} ({job.kind}) was claimed by {job.claimed_by}, which is gone; "
                "it will run again",
                data={"job": job.id, "kind": job.kind},
            )
        if self.resume is not None:
            self.resume_interrupted()

    def resume_interrupted(self) -> list[str]:
        """Resume every ``running`` deployment of the environment whose lock owner is gone."""
        assert self.resume is not None
        resumed = []
        for rec in self.store.list_deployments(
            environment=self.environment, status=["running"], limit=100
        ):
            held = self.store.get_lock(lock_key(rec.environment, rec.service))
            if held is not None and self.owner_alive(held.owner):
                continue  # someone is still running it
            try:
                self.resume(rec.id)
            except DeployopsError as exc:
                self._event(
                    "controller.resume_failed",
                    f"could not resume {rec.id}: {exc.message}",
                    level="error",
                    deployment_id=rec.id,
                )
            else:
                resumed.append(rec.id)
                self._event(
                    "controller.resumed", f"resumed interrupted {rec.id}", deployment_id=rec.id
                )
        return resumed

    def run(self, stop: threading.Event, *, max_ticks: int | None = None) -> None:
        """Tick until ``stop`` is set (or ``max_ticks`` ticks have run)."""
        if not self.started:
            self.start()
        ticks = 0
        try:
            while not stop.is_set():
                self.tick()
                ticks += 1
                if max_ticks is not None and ticks >= max_ticks:
                    return
                # Through the injected clock (virtual in tests); a stop is noticed within a tick.
                self.clock.sleep(self.tick_s)
        finally:
            if self.lease is not None and self.leading and stop.is_set():
                self.lease.release()  # a clean stop: the standby takes over at once
                self.leading = False

    def tick(self) -> None:
        """Run each loop that is due (only while this controller holds the lease)."""
        now = self.clock.monotonic()
        if not self._lead():
            self.last_tick = self.clock.monotonic()
            return
        if self.lease is not None and not self._recovered:
            self._recover()  # taken over from a controller that stopped or died
        loops: dict[str, Callable[[], object]] = {"jobs": self.run_jobs}
        if self.evaluator is not None:
            loops["alarms"] = self.evaluator.evaluate
        if self.autoscaler is not None:
            loops["autoscaler"] = self.autoscaler.step
        if self.rotations is not None:
            loops["rotations"] = self.rotations
        if self.measurements_retention_s is not None:
            loops["measurements"] = self.prune_measurements
        if self.watch is not None:
            loops["watch"] = self.watch.tick
        if self.redeliver is not None:
            loops["notices"] = self.redeliver
        loops.update({name: fn for name, (_every, fn) in self.loops.items()})
        for name, fn in loops.items():
            sched = self._schedules[name]
            if now < sched.next_at:
                continue
            if name in _BACKGROUND:
                if self._background_busy(name):
                    continue  # its previous run is still under way
                sched.next_at = now + sched.every_s
                th = threading.Thread(
                    target=self._timed, args=(name, fn), name=f"controller-{name}", daemon=True
                )
                self._background[name] = th
                th.start()
                continue
            sched.next_at = now + sched.every_s
            self._timed(name, fn)
        self.last_tick = self.clock.monotonic()

    def _background_busy(self, name: str) -> bool:
        th = self._background.get(name)
        return th is not None and th.is_alive()

    def join_background(self, timeout: float | None = None) -> None:
        """Wait for the loops running on their own thread (tests, a clean stop)."""
        for th in list(self._background.values()):
            th.join(timeout)

    def _timed(self, name: str, fn: Callable[[], object]) -> None:
        st = self.stats[name]
        t0 = self.clock.monotonic()
        try:
            fn()
        except Exception:
            st.errors += 1
            log.exception("controller loop %s failed", name)
        elapsed = self.clock.monotonic() - t0
        st.runs += 1
        st.last_seconds = elapsed
        st.seconds_total += elapsed
        st.last_run = self.clock.now().timestamp()

    # ------------------------------------------------------------------ retention
    def prune_measurements(self) -> tuple[int, int]:
        """Delete observed windows and judgements past ``measurements_retention_s``."""
        if self.measurements_retention_s is None:
            return (0, 0)
        cutoff = self.clock.now() - timedelta(seconds=self.measurements_retention_s)
        windows, judged = self.store.prune_measurements(cutoff)
        if windows or judged:
            self._event(
                "measurements.pruned",
                f"pruned {windows} observed windows and {judged} judgements older than "
                f"{cutoff.isoformat(timespec='seconds')}",
                data={"windows": windows, "judgements": judged},
            )
        return windows, judged

    # ------------------------------------------------------------------ jobs
    def run_jobs(self) -> list[tuple[JobRecord, JobOutcome]]:
        """Claim due jobs atomically and run each; the outcome is stored on the job."""
        done: list[tuple[JobRecord, JobOutcome]] = []
        while True:
            jobs = self.store.claim_due_jobs(
                now=self.clock.now(),
                worker=self.worker,
                limit=10,
                ids=None if not done else [j.id for j in self._pending_due(done)],
            )
            if not jobs:
                return done
            for job in jobs:
                outcome = self._run_job(job)
                if outcome.status in WAITING:
                    # Put back by run_deletion: it runs once the lock is free.
                    done.append((job, outcome))
                    continue
                self.store.finish_job(
                    job.id, status=outcome.status, result=outcome.result, now=self.clock.now()
                )
                self._event(
                    f"job.{outcome.status}",
                    f"job {job.id} ({job.kind}): {outcome.result}",
                    level="error" if outcome.status == "failed" else "info",
                    deployment_id=job.payload.get("deployment_id"),
                    data={"job": job.id, "kind": job.kind, "payload": job.payload},
                )
                done.append((job, outcome))

    def _run_job(self, job: JobRecord) -> JobOutcome:
        handler = self._handlers.get(job.kind)
        if handler is None:
            return JobOutcome("failed", f"no handler for job kind {job.kind!r}")
        try:
            return handler(job)
        except DeployopsError as exc:
            return JobOutcome("failed", exc.message)
        except Exception as exc:  # noqa: BLE001 - a broken job is recorded, not fatal
            return JobOutcome("failed", f"unexpected {type(exc).__name__}: {exc}")

    def delete_target_group(self, job: JobRecord) -> JobOutcome:
        """DEP-4: delete the previous colour's target group under the service's deploy lock,
        once nothing uses it (:func:`deployops.engine.cleanup.delete_target_group`)."""
        return run_deletion(
            self.store,
            self.traffic,
            self.compute,
            job,
            owner=self.worker,
            now=self.clock.now(),
            owner_alive=self.owner_alive,
        )

    def _pending_due(self, done: list[tuple[JobRecord, JobOutcome]]) -> list[JobRecord]:
        """Due jobs not tried in this run yet (a locked job waits for the next run)."""
        tried = {j.id for j, _ in done}
        now = self.clock.now()
        return [
            j for j in self.store.jobs(status="pending") if j.due_at <= now and j.id not in tried
        ]

    # ------------------------------------------------------------------ helpers
    def _event(
        self,
        kind: str,
        message: str,
        *,
        level: str = "info",
        deployment_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.store.add_event(
            EventRecord(
                ts=self.clock.now(),
                kind=kind,
                message=message,
                level=level,
                deployment_id=deployment_id,
                environment=self.environment,
                data=data or {},
            )
        )
