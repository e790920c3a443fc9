"""Deleting old target groups on time (DEP-4), under the service's deploy lock.

A deploy schedules the previous colour's target group for deletion after its retention
(24 h by default). The deletion is a job in the store; whoever runs it first takes the
service's lock (so it never races a deploy or rollback that may switch back to that group):
the controller (``deployops serve``), the next deploy of the service (:func:`run_due_deletions`),
or ``deployops cleanup``. Deleting is idempotent and refuses a group that still has traffic or
running tasks.

>>> run_due_deletions(env, environment="staging", service="web", owner=whoami())  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from deployops.domain.names import lock_key, prod_listener, test_listener
from deployops.engine.operation import Env
from deployops.engine.steps.cleanup import JOB_DELETE_TARGET_GROUP
from deployops.errors import DeployopsError, DriverError, LockHeldError, PlatformUnavailableError
from deployops.ports import Compute, Traffic
from deployops.store import EventRecord, JobRecord, StateStore

__all__ = [
    "JOB_DELETE_TARGET_GROUP",
    "WAITING",
    "JobOutcome",
    "delete_target_group",
    "due_deletions",
    "run_deletion",
    "run_due_deletions",
    "scheduled_deletions",
]


# Outcomes after which the job stays pending (put back, not finished).
WAITING = frozenset({"locked", "unavailable"})


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """``status`` is ``done``, ``skipped`` (with the reason), ``failed``, or one of
    :data:`WAITING`: ``locked`` (the lock was held) or ``unavailable`` (the platform could not
    be reached); a waiting job stays pending and runs later."""

    status: str
    result: str
    hint: str = ""  # what to do when it failed or waits on the platform


def delete_target_group(traffic: Traffic, compute: Compute, job: JobRecord) -> JobOutcome:
    """Delete the previous colour's target group, but only once nothing uses it: no
    listener forwards to it and its compute service runs no task. Idempotent. The caller
    holds the service's lock."""
    p: dict[str, Any] = job.payload
    group = str(p.get("target_group", ""))
    service = str(p.get("service", ""))
    if not group:
        return JobOutcome("failed", "the job names no target group")
    if traffic.describe_target_group(group) is None:
        return JobOutcome("done", f"{group} is already deleted")
    for listener in (prod_listener(service), test_listener(service)):
        try:
            forwards = traffic.describe_listener(listener).forwards
        except DeployopsError:
            continue
        if any(tg == group and weight > 0 for tg, weight in forwards):
            return JobOutcome("skipped", f"{listener} still forwards traffic to {group}")
    svc = compute.describe_service(group)
    if svc is not None and svc.desired > 0:
        return JobOutcome(
            "skipped", f"{group} still runs {svc.desired} desired task(s); not deleting it"
        )
    traffic.delete_target_group(group)
    return JobOutcome("done", f"deleted target group {group}")


_DELETION_REASON = "delete target group"


def run_deletion(
    store: StateStore,
    traffic: Traffic,
    compute: Compute,
    job: JobRecord,
    *,
    owner: str,
    now: Any,
    owner_alive: Callable[[str], bool] | None = None,
) -> JobOutcome:
    """Run one claimed deletion job under its service's lock. A lock held by someone else
    leaves the job pending (``locked``); the caller finishes the job otherwise. A lock left by
    a deletion whose process died (``owner_alive`` says so) is taken over: nothing else would
    ever release it."""
    env = str(job.payload.get("environment", ""))
    service = str(job.payload.get("service", ""))
    key = lock_key(env, service)
    held = store.get_lock(key)
    ours = held is not None and held.owner == owner
    if not ours:
        try:
            store.acquire_lock(
                key,
                owner=owner,
                reason=f"{_DELETION_REASON} {job.payload.get('target_group', '')}",
                now=now,
            )
        except LockHeldError as exc:
            stale = store.get_lock(key)
            if (
                owner_alive is not None
                and stale is not None
                and stale.deployment_id is None
                and stale.reason.startswith(_DELETION_REASON)
                and not owner_alive(stale.owner)
            ):
                store.transfer_lock(key, new_owner=owner)
            else:
                store.requeue_job(job.id, worker=owner)
                return JobOutcome("locked", f"{key} is locked by {exc.owner}; trying again later")
    try:
        return delete_target_group(traffic, compute, job)
    except (PlatformUnavailableError, DriverError) as exc:
        if isinstance(exc, DriverError) and not exc.retryable:
            return JobOutcome("failed", exc.message, exc.hint or "")
        store.requeue_job(job.id, worker=owner)
        return JobOutcome("unavailable", f"{exc.message}; trying again later", exc.hint or "")
    except DeployopsError as exc:
        return JobOutcome("failed", exc.message, exc.hint or "")
    finally:
        if not ours:
            store.release_lock(key, owner=owner)


def scheduled_deletions(
    store: StateStore, *, environment: str, service: str | None = None
) -> list[JobRecord]:
    """Pending target-group deletions of ``environment`` (and ``service``), soonest first."""
    return [
        j
        for j in store.jobs(status="pending")
        if j.kind == JOB_DELETE_TARGET_GROUP
        and j.payload.get("environment") == environment
        and (service is None or j.payload.get("service") == service)
    ]


def due_deletions(
    store: StateStore, *, environment: str, service: str | None, now: Any
) -> Sequence[JobRecord]:
    return [
        j
        for j in scheduled_deletions(store, environment=environment, service=service)
        if j.due_at <= now
    ]


def run_due_deletions(
    env: Env, *, environment: str, service: str | None, owner: str
) -> list[tuple[JobRecord, JobOutcome]]:
    """Run the deletions that are due (of ``service``, or all of the environment's)."""
    store, clock = env.store, env.clock
    now = clock.now()
    due = due_deletions(store, environment=environment, service=service, now=now)
    if not due:
        return []
    out: list[tuple[JobRecord, JobOutcome]] = []
    for job in store.claim_due_jobs(now=now, worker=owner, limit=len(due), ids=[j.id for j in due]):
        outcome = run_deletion(
            store, env.ports.traffic, env.ports.compute, job, owner=owner, now=clock.now()
        )
        if outcome.status not in WAITING:
            store.finish_job(job.id, status=outcome.status, result=outcome.result, now=clock.now())
        store.add_event(
            EventRecord(
                ts=clock.now(),
                kind=f"job.{outcome.status}",
                level="error" if outcome.status == "failed" else "info",
                message=f"job {job.id} ({job.kind}): {outcome.result}",
                deployment_id=job.payload.get("deployment_id"),
                environment=environment,
                service=str(job.payload.get("service", "")),
                data={"job": job.id, "kind": job.kind, "payload": job.payload},
            )
        )
        out.append((job, outcome))
    return out
