"""The deployment engine: plans a request, then runs the plan durably under a lock.

Before each step its intent is stored, after it the outcome; steps are idempotent, so
``resume`` continues an interrupted deployment at its first unfinished step. The first failed
step stops the plan (DEP-7): traffic never moves to a version that failed a check, and a
failure after the switch flips the listener back to the previous colour, which keeps running
until the stability window has passed (DEP-3, DEP-4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from deployops.clock import Clock
from deployops.config.project import ProjectConfig, ServiceConfig
from deployops.domain.model import HealthCheck, ServiceState, TaskDefinitionSpec, TaskState
from deployops.domain.plan import (
    FROM_CONTEXT,
    BlueGreenParams,
    CheckTrafficMoved,
    CreateTargetGroup,
    Observe,
    Plan,
    RegisterTaskDefinition,
    RollingParams,
    RollingUpdate,
    ScaleService,
    ScheduleDeleteTargetGroup,
    SmokeTest,
    StartService,
    Step,
    SwitchListener,
    UseTaskDefinition,
    WaitHealthy,
    blue_green_plan,
    colour_of,
    rolling_plan,
    step_from_json,
)
from deployops.domain.version import Version
from deployops.engine.events import Notice, Notify, Reporter, null_reporter
from deployops.engine.observe import (
    HealthObserver,
    Observer,
    ObserverFactory,
    ScaleAware,
    Verdict,
)
from deployops.engine.poll import wait_until
from deployops.errors import (
    ConfigError,
    DeploymentError,
    DeployopsError,
    LockHeldError,
    RolledBackError,
)
from deployops.ids import new_id
from deployops.ports import Compute, Metrics, Prober, Traffic
from deployops.store import DecisionRecord, DeploymentRecord, EventRecord, StateStore

__all__ = ["DeployRequest", "Deployer", "LiveState", "lock_key"]

# WaitHealthy stops early once every task of the new version restarted this often.
CRASH_LOOP_RESTARTS = 3

# Deferred job kinds run by the controller (or opportunistically by the next deploy).
JOB_DELETE_TARGET_GROUP = "delete_target_group"
# The longest an observation may run past its stability window while an escalation or a
# scale-out waits to be judged (a flapping metric must not hold a deploy forever).
MAX_OBSERVE_HOLD_S = 3600.0


def lock_key(environment: str, service: str) -> str:
    return f"{environment}/{service}"


@dataclass(frozen=True, slots=True)
class DeployRequest:
    service: str
    version: str
    strategy: str | None = None  # None: the service's configured strategy
    force: bool = False
    owner: str = "deployops"
    reverts: str | None = None  # set when this deployment is a rollback of another
    kind: str = "deploy"


@dataclass(frozen=True, slots=True)
class LiveState:
    """What serves production now, read from the platform (not from our records)."""

    target_group: str
    colour: str
    service: ServiceState | None
    version: str
    task_definition: str

    @property
    def active(self) -> bool:
        return self.service is not None and self.service.desired > 0


@dataclass
class _Ports:
    compute: Compute
    traffic: Traffic
    metrics: Metrics
    prober: Prober


@dataclass
class _Run:
    rec: DeploymentRecord
    plan: Plan
    ctx: dict[str, Any] = field(default_factory=dict)
    # Notices held back until traffic is safe (a rollback flips first, then tells people).
    pending: list[Notice] = field(default_factory=list)
    rollback_verdict: Verdict | None = None


class Deployer:
    """Deploys one environment's services through the platform's ports."""

    def __init__(
        self,
        *,
        project: ProjectConfig,
        environment: str,
        compute: Compute,
        traffic: Traffic,
        metrics: Metrics,
        prober: Prober,
        store: StateStore,
        clock: Clock,
        reporter: Reporter = null_reporter,
        notify: Notify | None = None,
        observer: Observer | ObserverFactory | None = None,
        app_environment: Callable[[ProjectConfig, str], tuple[dict[str, str], dict[str, str]]]
        | None = None,
    ) -> None:
        self.project = project
        self.environment = environment
        self.ports = _Ports(compute, traffic, metrics, prober)
        self.store = store
        self.clock = clock
        self.reporter = reporter
        self._notify = notify
        self._observer = observer
        self._app_environment = app_environment

    # ------------------------------------------------------------------ planning
    def live_state(self, service: str) -> LiveState:
        listener = self.ports.traffic.describe_listener(f"{service}-prod")
        tg = listener.target_group or f"{service}-blue"
        svc = self.ports.compute.describe_service(tg)
        version = td = ""
        if svc is not None and svc.task_definition:
            td = svc.task_definition
            version = self.ports.compute.describe_task_definition(td).spec.version
        return LiveState(
            target_group=tg,
            colour=colour_of(tg) or "blue",
            service=svc,
            version=version,
            task_definition=td,
        )

    def plan(self, request: DeployRequest) -> tuple[Plan, LiveState]:
        """Validate the request and build its plan. Changes nothing."""
        cfg = self.project.service(request.service)
        try:
            version = Version.parse(request.version)
        except ValueError as exc:
            raise ConfigError(
                str(exc), path="--version", hint="pass a semantic version such as 1.4.0"
            ) from None
        strategy = request.strategy or cfg.strategy
        if strategy not in ("blue-green", "rolling"):
            raise ConfigError(
                f"unknown strategy {strategy!r}",
                path="--strategy",
                hint="use blue-green or rolling",
            )
        spec = self.task_definition_spec(request.service, cfg, str(version))
        live = self.live_state(request.service)
        if live.active and live.version == str(version) and not request.force:
            raise ConfigError(
                f"{request.service} {version} is already live in {self.environment} "
                f"({live.task_definition} on {live.target_group})",
                path="--version",
                hint="pass --force to deploy the same version again",
            )
        hc = _health_check(cfg)
        smoke = tuple((c.path, c.status) for c in cfg.blue_green.smoke_checks)
        bg = cfg.blue_green
        desired = bg.desired_count or cfg.desired_count
        if strategy == "blue-green":
            plan = blue_green_plan(
                BlueGreenParams(
                    service=request.service,
                    spec=spec,
                    health_check=hc,
                    desired_count=desired,
                    active_colour=live.colour,
                    has_active=live.active,
                    health_timeout_s=bg.health_timeout,
                    stability_window_s=bg.stability_window,
                    sample_interval_s=bg.sample_interval,
                    target_group_retention_s=bg.target_group_retention,
                    smoke_checks=smoke,
                    max_error_rate=bg.max_error_rate,
                )
            )
        else:
            plan = rolling_plan(
                RollingParams(
                    service=request.service,
                    spec=spec,
                    health_check=hc,
                    desired_count=cfg.desired_count,
                    active_colour=live.colour,
                    has_active=live.active,
                    maximum_percent=cfg.rolling.maximum_percent,
                    minimum_healthy_percent=cfg.rolling.minimum_healthy_percent,
                    health_timeout_s=cfg.rolling.health_timeout,
                    stability_window_s=bg.stability_window,
                    sample_interval_s=bg.sample_interval,
                    max_error_rate=bg.max_error_rate,
                    smoke_checks=smoke,
                )
            )
        return plan, live

    def task_definition_spec(
        self, service: str, cfg: ServiceConfig, version: str
    ) -> TaskDefinitionSpec:
        env: dict[str, str] = {}
        secrets: dict[str, str] = {}
        if self._app_environment is not None:
            env, secrets = self._app_environment(self.project, self.environment)
        env.update(cfg.environment)
        env.update(cfg.version_environment.get(version, {}))
        env["APP_VERSION"] = version
        image = cfg.image.replace("{version}", version) if cfg.image else ""
        container_port = int(env.get("PORT", "3000"))
        return TaskDefinitionSpec(
            family=cfg.task_family or service,
            version=version,
            port=container_port,
            command=tuple(cfg.command),
            image=image,
            environment=tuple(sorted(env.items())),
            secrets=tuple(sorted(secrets.items())),
            health_check=_health_check(cfg),
            working_dir=str((self.project.root / cfg.working_dir).resolve()),
        )

    # ------------------------------------------------------------------ running
    def refuse(self, request: DeployRequest, error: DeployopsError) -> None:
        """Record a refused request (bad input, lock held): an event, nothing else."""
        self.store.add_event(
            EventRecord(
                ts=self.clock.now(),
                kind="deploy.refused",
                level="warning",
                environment=self.environment,
                service=request.service,
                message=f"refused {request.kind} of {request.service} {request.version}: "
                f"{error.message}",
                data={"version": request.version, "error": type(error).__name__},
            )
        )

    def deploy(self, request: DeployRequest) -> DeploymentRecord:
        """Plan, lock, record and run. Raises on failure (exit codes 1/2/3/4)."""
        try:
            plan, live = self.plan(request)
        except ConfigError as exc:
            self.refuse(request, exc)
            raise
        return self.start(request, plan, live)

    def start(self, request: DeployRequest, plan: Plan, live: LiveState) -> DeploymentRecord:
        """Lock, record and run an already built plan (deploys and rollbacks)."""
        key = lock_key(self.environment, request.service)
        now = self.clock.now()
        dep_id = new_id("dep", now)
        try:
            self.store.acquire_lock(
                key,
                owner=request.owner,
                reason=f"{request.kind} {request.service} {request.version} ({dep_id})",
                now=now,
                deployment_id=dep_id,
            )
        except LockHeldError as exc:
            self.refuse(request, exc)
            raise
        try:
            rec = DeploymentRecord(
                id=dep_id,
                environment=self.environment,
                service=request.service,
                version=request.version,
                strategy=plan.strategy,
                kind=request.kind,
                status="running",
                phase="",
                owner=request.owner,
                target_group=plan.target_group,
                previous_version=live.version if live.active else "",
                previous_task_definition=live.task_definition if live.active else "",
                previous_target_group=plan.previous_target_group,
                reverts=request.reverts,
                plan=plan.to_json(),
                created_at=now,
                updated_at=now,
            )
            self.store.create_deployment(rec)
            self._event(
                rec,
                "deploy.started",
                f"{request.kind} of {request.service} "
                f"{live.version or '(none)'} -> {request.version} started ({plan.strategy})",
                data={"steps": len(plan.steps), "plan": plan.to_json()},
            )
            return self._execute(_Run(rec=rec, plan=plan), start=0)
        finally:
            self.store.release_lock(key, owner=request.owner)

    def resume(
        self, deployment_id: str, *, owner: str, owner_alive: Callable[[str], bool]
    ) -> DeploymentRecord:
        """Continue an interrupted deployment from its first unfinished step."""
        rec = self.store.require_deployment(deployment_id)
        if rec.status != "running":
            raise ConfigError(
                f"{rec.id} is {rec.status}, not interrupted; nothing to resume",
                path="DEPLOYMENT_ID",
                hint="`deployops deployments list` shows deployments still running",
            )
        key = lock_key(rec.environment, rec.service)
        held = self.store.get_lock(key)
        if held is None:
            self.store.acquire_lock(
                key,
                owner=owner,
                reason=f"resume {rec.id}",
                now=self.clock.now(),
                deployment_id=rec.id,
            )
        elif held.owner != owner:
            if owner_alive(held.owner) and self.store.lock_holder_alive(held):
                raise LockHeldError(
                    key,
                    held.owner,
                    held.reason,
                    held.acquired_at.isoformat(timespec="seconds"),
                    (self.clock.now() - held.acquired_at).total_seconds(),
                )
            self.store.transfer_lock(key, new_owner=owner)
        plan = Plan(
            strategy=rec.strategy,
            steps=tuple(step_from_json(s) for s in rec.plan),
            target_group=rec.target_group,
            previous_target_group=rec.previous_target_group,
        )
        ctx: dict[str, Any] = {}
        start = 0
        for s in self.store.steps_for(rec.id):
            if s.status != "succeeded":
                break
            ctx.update(s.result)
            start = s.seq + 1
        self._event(
            rec,
            "deploy.resumed",
            f"resuming {rec.id} at step {start + 1} of "
            f"{len(plan.steps)} (previous owner {held.owner if held else 'none'})",
        )
        try:
            self._guard_traffic(rec)
            return self._execute(_Run(rec=rec, plan=plan, ctx=ctx), start=start)
        finally:
            self.store.release_lock(key, owner=owner)

    def _guard_traffic(self, rec: DeploymentRecord) -> None:
        """On resume: never leave production on an unhealthy target group."""
        listener = self.ports.traffic.describe_listener(f"{rec.service}-prod")
        tg = listener.target_group
        svc = self.ports.compute.describe_service(tg)
        if svc is not None and svc.desired > 0 and svc.healthy >= 1:
            return
        prev = rec.previous_target_group
        if prev and prev != tg:
            prev_svc = self.ports.compute.describe_service(prev)
            if prev_svc is not None and prev_svc.healthy >= 1:
                self.ports.traffic.switch_listener(f"{rec.service}-prod", prev)
                self._event(
                    rec,
                    "traffic.restored",
                    f"production was on unhealthy {tg}; switched back to {prev}",
                    level="warning",
                )

    def _execute(self, run: _Run, *, start: int) -> DeploymentRecord:
        rec = run.rec
        steps = run.plan.steps
        for seq in range(start, len(steps)):
            step = steps[seq]
            resolved = _resolve(step, run.ctx)
            self.store.update_deployment(rec.id, phase=step.phase, updated_at=self.clock.now())
            self.store.record_step_intent(
                rec.id,
                seq,
                step.kind,
                phase=step.phase,
                params=resolved.to_json(),
                now=self.clock.now(),
            )
            self._event(
                rec,
                "step.started",
                f"[{seq + 1}/{len(steps)}] {resolved.describe()}",
                data={"seq": seq, "step": step.kind, "phase": step.phase},
            )
            began = self.clock.monotonic()
            try:
                result = self._run_step(run, resolved)
            except DeployopsError as exc:
                self.store.record_step_outcome(
                    rec.id, seq, status="failed", error=exc.message, now=self.clock.now()
                )
                self._event(
                    rec,
                    "step.failed",
                    f"{step.kind} failed: {exc.message}",
                    level="error",
                    data={"seq": seq, "step": step.kind},
                )
                return self._fail(run, step, exc)
            took = self.clock.monotonic() - began
            run.ctx.update(result)
            self.store.record_step_outcome(
                rec.id, seq, status="succeeded", result=result, now=self.clock.now()
            )
            if "task_definition" in result:
                self.store.update_deployment(rec.id, task_definition=result["task_definition"])
            self._event(
                rec,
                "step.succeeded",
                f"{step.kind} done in {took:.2f}s",
                data={"seq": seq, "step": step.kind, "seconds": round(took, 3), "result": result},
            )
        now = self.clock.now()
        self.store.update_deployment(
            rec.id, status="succeeded", phase="done", updated_at=now, finished_at=now
        )
        done = self.store.get_deployment(rec.id)
        assert done is not None
        self._event(
            done, "deploy.succeeded", f"{done.service} {done.version} is live in {done.environment}"
        )
        self._send(
            Notice(
                severity="info",
                kind="deployment.succeeded",
                title=f"{done.service} {done.version} deployed to {done.environment}",
                text=f"{done.kind} {done.id} succeeded ({done.strategy})",
                dedup_key=done.id,
                fields=_fields(done),
            )
        )
        return done

    # ------------------------------------------------------------------ steps
    def _run_step(self, run: _Run, step: Step) -> dict[str, Any]:
        p = self.ports
        if isinstance(step, RegisterTaskDefinition):
            td = p.compute.register_task_definition(step.spec)
            return {"task_definition": td.ref}
        if isinstance(step, UseTaskDefinition):
            return {"task_definition": p.compute.describe_task_definition(step.task_definition).ref}
        if isinstance(step, CreateTargetGroup):
            tg = p.traffic.create_target_group(step.target_group, health_check=step.health_check)
            return {"target_group": tg.name}
        if isinstance(step, StartService):
            st = p.compute.create_service(
                step.service,
                task_definition=step.task_definition,
                desired_count=step.desired_count,
                target_group=step.target_group,
            )
            return {"service": st.name, "desired": st.desired}
        if isinstance(step, WaitHealthy):
            return self._wait_healthy(
                run,
                step.service,
                step.target_group,
                step.desired_count,
                step.task_definition,
                step.timeout_s,
            )
        if isinstance(step, SmokeTest):
            return self._smoke(step)
        if isinstance(step, SwitchListener):
            listener = p.traffic.switch_listener(step.listener, step.target_group)
            if listener.target_group != step.target_group:
                raise DeploymentError(
                    f"{step.listener} still forwards to {listener.target_group} after the switch"
                )
            return {"switched_at": self.clock.now().isoformat(), "listener": listener.name}
        if isinstance(step, CheckTrafficMoved):
            return self._check_traffic(run, step)
        if isinstance(step, Observe):
            return self._observe(run, step)
        if isinstance(step, ScaleService):
            st = p.compute.update_service(step.service, desired_count=step.desired_count)
            return {"service": st.name, "desired": st.desired}
        if isinstance(step, ScheduleDeleteTargetGroup):
            due = self.clock.now() + timedelta(seconds=step.after_s)
            self.store.schedule_job(
                kind=JOB_DELETE_TARGET_GROUP,
                dedup_key=f"{JOB_DELETE_TARGET_GROUP}:{run.rec.id}:{step.target_group}",
                due_at=due,
                payload={
                    "environment": run.rec.environment,
                    "service": run.rec.service,
                    "target_group": step.target_group,
                    "deployment_id": run.rec.id,
                },
            )
            return {"delete_at": due.isoformat()}
        if isinstance(step, RollingUpdate):
            return self._rolling(run, step)
        raise DeploymentError(f"no handler for step {step.kind}")

    def _progress(self, run: _Run, message: str, seconds_left: float, **data: Any) -> None:
        self.reporter(
            EventRecord(
                ts=self.clock.now(),
                kind="progress",
                message=message,
                deployment_id=run.rec.id,
                environment=run.rec.environment,
                service=run.rec.service,
                data={"seconds_left": round(seconds_left, 1), **data},
            )
        )

    def _wait_healthy(
        self,
        run: _Run,
        service: str,
        target_group: str,
        desired: int,
        task_definition: str,
        timeout_s: float,
    ) -> dict[str, Any]:
        last: dict[str, Any] = {}
        cfg = self.project.service(run.rec.service)
        interval = max(0.1, min(1.0, cfg.health_check.interval / 2))
        notes = [""]

        def check() -> tuple[bool, str]:
            st = self.ports.compute.describe_service(service)
            tg = self.ports.traffic.describe_target_group(target_group)
            if st is None:
                return False, f"{service} does not exist"
            on_new = [t for t in st.tasks if t.task_definition in ("", task_definition)]
            healthy = sum(1 for t in on_new if t.healthy)
            in_lb = tg.healthy_count if tg else 0
            last.update(healthy=healthy, in_target_group=in_lb, running=st.running, desired=desired)
            note = (
                f"{healthy}/{desired} containers healthy, {in_lb}/{desired} healthy in "
                f"{target_group}"
            )
            errors = [t.last_error for t in on_new if t.last_error]
            if errors:
                note += f"; last error: {errors[-1]}"
            notes[0] = note
            # A circuit breaker (like ECS's): every task of the new version has failed again
            # and again without ever turning healthy; waiting out the timeout changes nothing.
            running_new = [t for t in on_new if t.state is not TaskState.STOPPED]
            if (
                running_new
                and healthy == 0
                and min(t.restarts for t in running_new) >= CRASH_LOOP_RESTARTS
            ):
                crash_loop[0] = True
                return True, note
            return healthy >= desired and in_lb >= desired, note

        crash_loop = [False]
        try:
            note = wait_until(
                self.clock,
                check,
                timeout_s=timeout_s,
                interval_s=interval,
                what=f"health of {service}",
                on_progress=lambda n, left: self._progress(run, n, left, **last),
            )
        except DeployopsError as exc:
            raise DeploymentError(
                f"{service} did not turn healthy within {timeout_s:g}s ({notes[0]})",
                hint="read the replica logs (`deployops local status` shows where), fix the "
                "version, or raise blue_green.health_timeout",
            ) from exc
        if crash_loop[0]:
            raise DeploymentError(
                f"{service} is crash-looping: every task failed {CRASH_LOOP_RESTARTS} times or "
                f"more without turning healthy ({notes[0]})",
                hint="read the replica logs (`deployops local status` shows where) and fix "
                "the version; traffic was not switched",
            )
        return {"healthy": last.get("healthy", desired), "note": note}

    def _smoke(self, step: SmokeTest) -> dict[str, Any]:
        lst = self.ports.traffic.switch_listener(step.listener, step.target_group)
        if lst.target_group != step.target_group:
            raise DeploymentError(f"test listener {step.listener} did not switch")
        results = []
        for path, expected in step.checks:
            url = f"http://{lst.host}:{lst.port}{path}"
            res = self.ports.prober.get(url, timeout_s=5.0)
            results.append({"url": url, "status": res.status, "ms": round(res.elapsed_ms, 1)})
            if res.status != expected:
                got = res.status or res.error
                raise DeploymentError(
                    f"smoke check {path} through {step.listener} answered {got}, "
                    f"expected {expected}",
                    hint="the new version is not serving correctly; traffic was not switched",
                )
        return {"checks": results}

    def _check_traffic(self, run: _Run, step: CheckTrafficMoved) -> dict[str, Any]:
        lst = self.ports.traffic.describe_listener(step.listener)
        if lst.target_group != step.target_group:
            raise DeploymentError(
                f"{step.listener} forwards to {lst.target_group}, not {step.target_group}"
            )
        # Traffic moved when the listener reads back the new group and requests through it
        # reach a healthy container of the new version. The health path answers that; how
        # well the application serves is the observer's question, not this step's.
        path = self.project.service(run.rec.service).health_check.path
        url = f"http://{lst.host}:{lst.port}{path}"
        probes = 3
        for _ in range(probes):
            res = self.ports.prober.get(url, timeout_s=5.0)
            if res.status != 200:
                raise DeploymentError(
                    f"after the switch {url} answered {res.status or res.error}, expected 200"
                )
        return {"forwards_to": lst.target_group, "probes": probes}

    def _observer_for(self, service: str) -> Observer:
        if self._observer is None:
            return HealthObserver(compute=self.ports.compute, metrics=self.ports.metrics)
        if isinstance(self._observer, Observer):
            return self._observer
        return self._observer(service)

    def _observe(self, run: _Run, step: Observe) -> dict[str, Any]:
        """Watch the new version for the stability window (DEP-3) under the rollback rules
        (RB-1). The first evaluation comes one sample interval after the switch (RB-2: within
        30 s of the first anomalous sample). A verdict that still needs time (an escalation,
        a scale-out being judged) extends the window, at most by ``MAX_OBSERVE_HOLD_S``."""
        observer = self._observer_for(run.rec.service)
        since = self.clock.now()
        began = self.clock.monotonic()
        base_end = began + step.window_s
        limit = base_end + MAX_OBSERVE_HOLD_S
        end = base_end
        checks = 0
        told: dict[str, tuple[str, str]] = {}  # rule -> (action, verdict) last recorded
        decisions = 0
        while True:
            left = end - self.clock.monotonic()
            if left <= 0:
                break
            self.clock.sleep(min(step.interval_s, left))
            verdict = observer.evaluate(step, since=since, now=self.clock.now())
            checks += 1
            mono = self.clock.monotonic()
            new_end = max(base_end, min(limit, mono + verdict.hold_s))
            if verdict.hold_s > 0 and new_end > base_end and end <= base_end:
                self._event(
                    run.rec,
                    "observe.extended",
                    f"keeping {step.target_group} under observation past the "
                    f"{step.window_s:g}s window: {verdict.reason}",
                    level="warning",
                    data={"hold_s": round(verdict.hold_s, 1)},
                )
            # Never shorten a hold already granted: a rule whose newest period is still
            # being collected must not lose the time it was given one sample ago.
            end = max(end, new_end)
            self._progress(
                run,
                f"observing {step.target_group}: {verdict.reason}",
                max(0.0, end - self.clock.monotonic()),
                stage="observe",
            )
            if verdict.action == "rollback":
                run.rollback_verdict = verdict
                notice = self._decide(run, verdict, send=False)
                if notice is not None:
                    run.pending.append(notice)
                raise DeploymentError(
                    f"{step.target_group} broke a rule while observed: {verdict.reason}"
                )
            if verdict.action == "continue":
                continue
            key = (verdict.action, str(verdict.evidence.get("verdict", "")))
            if verdict.action == "scale_out":
                self._decide(run, verdict)
                decisions += 1
                self._scale_out(run, step, verdict, observer)
            elif told.get(verdict.rule) != key:
                # A notice is recorded once per change of state, not once per sample.
                self._decide(run, verdict)
                decisions += 1
            told[verdict.rule] = key
        return {
            "observed_s": round(self.clock.monotonic() - began, 3),
            "checks": checks,
            "extended_s": round(max(0.0, end - base_end), 3),
            "decisions": decisions,
        }

    def _scale_out(self, run: _Run, step: Observe, verdict: Verdict, observer: Observer) -> None:
        """Raise the new service's desired count within the policy's limits (RB-1 memory and
        CPU rows); no room left is reported to the observer, which then decides (rollback
        for memory, a notice for CPU)."""
        max_replicas, add = observer.scale_limits() if isinstance(observer, ScaleAware) else (10, 2)
        svc = self.ports.compute.describe_service(step.service)
        desired = svc.desired if svc is not None else 0
        now = self.clock.now()
        if desired >= max_replicas:
            detail = f"{step.service} already runs {desired} of at most {max_replicas} replicas"
            self._event(run.rec, "scale_out.no_room", detail, level="warning")
            if isinstance(observer, ScaleAware):
                observer.scaled_out(
                    verdict.rule, at=now, desired=desired, no_room=True, detail=detail
                )
            return
        target = min(max_replicas, desired + add)
        self.ports.compute.update_service(step.service, desired_count=target)
        detail = f"scaled {step.service} out from {desired} to {target} replicas ({verdict.rule})"
        self._event(
            run.rec,
            "scale_out",
            detail,
            level="warning",
            data={"from": desired, "to": target, "rule": verdict.rule},
        )
        if isinstance(observer, ScaleAware):
            observer.scaled_out(verdict.rule, at=now, desired=target, no_room=False, detail=detail)

    def _rolling(self, run: _Run, step: RollingUpdate) -> dict[str, Any]:
        p = self.ports
        desired = step.desired_count
        min_healthy = desired * step.minimum_healthy_percent // 100
        p.compute.update_service(
            step.service, task_definition=step.task_definition, desired_count=desired
        )
        lowest = [desired]

        def check() -> tuple[bool, str]:
            st = p.compute.describe_service(step.service)
            if st is None:
                return False, f"{step.service} does not exist"
            lowest[0] = min(lowest[0], st.healthy)
            new = [t for t in st.tasks if t.task_definition == step.task_definition]
            new_healthy = sum(1 for t in new if t.healthy)
            old = [
                t
                for t in st.tasks
                if t.task_definition != step.task_definition and t.state != TaskState.STOPPED
            ]
            return (
                new_healthy >= desired and not old,
                f"{new_healthy}/{desired} new healthy, {len(old)} old left, "
                f"{st.healthy} healthy in all (floor {min_healthy})",
            )

        try:
            wait_until(
                self.clock,
                check,
                timeout_s=step.timeout_s,
                interval_s=0.25,
                what=f"rolling update of {step.service}",
                on_progress=lambda n, left: self._progress(run, n, left),
            )
        except DeployopsError as exc:
            raise DeploymentError(f"rolling update did not finish: {exc.message}") from exc
        return {"lowest_healthy_seen": lowest[0], "minimum_healthy": min_healthy}

    # ------------------------------------------------------------------ failure (DEP-7)
    def _fail(self, run: _Run, step: Step, exc: DeployopsError) -> DeploymentRecord:
        """Stop at the first failure (DEP-7). After the switch, traffic goes back first (a
        listener flip to the colour that kept running, RB-2), then people are told, then the
        rollback is verified, recorded as its own deployment and written up as an incident
        report."""
        rec = run.rec
        cfg = self.project.service(rec.service)
        prod = f"{rec.service}-prod"
        rolled_back = False
        flip: dict[str, Any] | None = None
        impact: dict[str, Any] | None = None
        notes: list[str] = []
        try:
            current = self.ports.traffic.describe_listener(prod).target_group
            prev = rec.previous_target_group
            if rec.kind == "rollback":
                notes.append(f"rollback stopped; production is on {current}")
            elif run.plan.strategy == "blue-green":
                if current == run.plan.target_group and prev and prev != current:
                    # The switch happened: flip back to the colour that kept running (RB-2).
                    began = self.clock.monotonic()
                    self.ports.traffic.switch_listener(prod, prev)
                    ms = (self.clock.monotonic() - began) * 1000
                    rolled_back = True
                    flip = {
                        "listener": prod,
                        "from": current,
                        "to": prev,
                        "ms": round(ms, 3),
                        "at": self.clock.now().isoformat(),
                    }
                    notes.append(f"switched {prod} back to {prev} in {ms:.0f} ms")
                    impact = self._impact(rec, flip)
                elif current != run.plan.target_group:
                    notes.append(f"traffic stayed on {current}")
                if cfg.blue_green.teardown_on_failure and run.plan.target_group != (
                    self.ports.traffic.describe_listener(prod).target_group
                ):
                    svc = self.ports.compute.describe_service(run.plan.target_group)
                    if svc is not None and svc.desired > 0:
                        self.ports.compute.update_service(run.plan.target_group, desired_count=0)
                        notes.append(f"scaled failed {run.plan.target_group} to 0")
            elif isinstance(step, RollingUpdate | Observe) and rec.previous_task_definition:
                self.ports.compute.update_service(
                    run.plan.target_group, task_definition=rec.previous_task_definition
                )
                rolled_back = True
                notes.append(
                    f"rolling back {run.plan.target_group} to {rec.previous_task_definition}"
                )
        except DeployopsError as cleanup_exc:
            notes.append(f"cleanup failed: {cleanup_exc.message}")
        for notice in run.pending:
            self._send(notice)
        run.pending.clear()
        status = "rolled_back" if rolled_back else "failed"
        now = self.clock.now()
        error = exc.message + (f" ({'; '.join(notes)})" if notes else "")
        self.store.update_deployment(
            rec.id, status=status, error=error, updated_at=now, finished_at=now
        )
        self._event(rec, f"deploy.{status}", error, level="error")
        report = ""
        if rolled_back:
            report = self._after_rollback(run, step, flip, error, impact)
        self._send(
            Notice(
                severity="critical" if rolled_back else "warning",
                kind=f"deployment.{status}",
                title=f"{rec.service} {rec.version} {status.replace('_', ' ')} "
                f"in {rec.environment}",
                text=error + (f" Incident report: {report}" if report else ""),
                dedup_key=rec.id,
                fields={**_fields(rec), "failed_step": step.kind},
            )
        )
        if rolled_back:
            raise RolledBackError(
                f"{rec.id}: {rec.service} {rec.version} was rolled back: {error}",
                hint=f"`deployops deployments show {rec.id}` has the steps and evidence"
                + (f"; incident report: {report}" if report else ""),
            )
        raise DeploymentError(
            f"{rec.id}: {rec.kind} of {rec.service} {rec.version} failed at {step.kind}: {error}",
            hint=exc.hint or f"`deployops deployments show {rec.id}` has the steps",
        )

    def _impact(self, rec: DeploymentRecord, flip: Mapping[str, Any]) -> dict[str, Any] | None:
        from deployops.engine.incident import measure_impact

        fresh = self.store.get_deployment(rec.id) or rec
        try:
            return measure_impact(self, fresh, flip)
        except DeployopsError:
            return None

    def _after_rollback(
        self,
        run: _Run,
        step: Step,
        flip: Mapping[str, Any] | None,
        error: str,
        impact: Mapping[str, Any] | None = None,
    ) -> str:
        """Verify the automatic rollback, record it as a deployment of its own linked to the
        one it reverts, and write the incident report (RB-2 verify). Returns the report's
        path. Never raises: the rollback itself already happened."""
        from deployops.engine.incident import verify_rollback, write_incident_report

        rec = self.store.get_deployment(run.rec.id) or run.rec
        try:
            interval = next((s.interval_s for s in run.plan.steps if isinstance(s, Observe)), 0.0)
            verification = verify_rollback(
                self,
                rec,
                target_group=str(flip["to"]) if flip else rec.target_group,
                wait_s=interval,
            )
            rb_id = self._record_rollback(rec, flip, verification, step)
            path = write_incident_report(
                self,
                rec,
                rollback_id=rb_id,
                flip=dict(flip) if flip else None,
                verification=verification,
                trigger=run.rollback_verdict,
                error=error,
                impact=impact,
            )
        except DeployopsError as exc:
            self._event(
                run.rec,
                "incident.failed",
                f"the rollback happened, but its report failed: {exc.message}",
                level="error",
            )
            return ""
        return str(path)

    def _record_rollback(
        self,
        rec: DeploymentRecord,
        flip: Mapping[str, Any] | None,
        verification: Mapping[str, Any],
        step: Step,
    ) -> str:
        """The automatic rollback as a deployment record (kind ``rollback``, ``reverts``)."""
        now = self.clock.now()
        rb_id = new_id("dep", now)
        plan = Plan(
            strategy="flip" if flip else "redeploy",
            steps=(
                SwitchListener(
                    listener=f"{rec.service}-prod",
                    target_group=rec.previous_target_group,
                    previous_target_group=rec.target_group,
                ),
            )
            if flip
            else (),
            target_group=rec.previous_target_group or rec.target_group,
            previous_target_group=rec.target_group,
        )
        self.store.create_deployment(
            DeploymentRecord(
                id=rb_id,
                environment=rec.environment,
                service=rec.service,
                version=rec.previous_version,
                strategy=plan.strategy,
                kind="rollback",
                status="succeeded" if verification.get("ok") else "failed",
                phase="done",
                owner="deployops (automatic)",
                task_definition=rec.previous_task_definition,
                target_group=plan.target_group,
                previous_version=rec.version,
                previous_task_definition=rec.task_definition,
                previous_target_group=rec.target_group,
                reverts=rec.id,
                plan=plan.to_json(),
                error="" if verification.get("ok") else str(verification.get("summary", "")),
                created_at=now,
                updated_at=now,
                finished_at=now,
            )
        )
        seq = 0
        if flip:
            self.store.record_step_intent(
                rb_id, 0, "SwitchListener", phase="switch", params=dict(flip), now=now
            )
            self.store.record_step_outcome(
                rb_id, 0, status="succeeded", result={"ms": flip.get("ms")}, now=now
            )
            seq = 1
        self.store.record_step_intent(
            rb_id, seq, "VerifyRollback", phase="verify", params={"after": step.kind}, now=now
        )
        self.store.record_step_outcome(
            rb_id,
            seq,
            status="succeeded" if verification.get("ok") else "failed",
            result=dict(verification),
            error="" if verification.get("ok") else str(verification.get("summary", "")),
            now=self.clock.now(),
        )
        self._event(
            rec,
            "rollback.recorded",
            f"automatic rollback {rb_id} of {rec.id}: {verification.get('summary', '')}",
            data={"rollback_id": rb_id},
        )
        return rb_id

    def _decide(self, run: _Run, verdict: Verdict, *, send: bool = True) -> Notice | None:
        """Store a decision with its evidence (RB-2) and tell stakeholders; with
        ``send=False`` the notice is returned to be sent later (after a rollback's flip)."""
        self.store.add_decision(
            DecisionRecord(
                ts=self.clock.now(),
                deployment_id=run.rec.id,
                rule=verdict.rule or "observe",
                verdict=verdict.reason,
                action=verdict.action,
                evidence=verdict.evidence,
            )
        )
        self._event(
            run.rec,
            "decision",
            f"{verdict.rule}: {verdict.reason} -> {verdict.action}",
            level="warning",
            data={
                "action": verdict.action,
                "rule": verdict.rule,
                "caused_by_release": verdict.evidence.get("caused_by_release"),
            },
        )
        if verdict.action not in ("notify", "rollback", "scale_out"):
            return None
        blamed = verdict.evidence.get("caused_by_release")
        title = f"{run.rec.service} {run.rec.version}: {verdict.rule} -> {verdict.action}"
        if verdict.action == "notify" and blamed is False and verdict.evidence.get("baseline"):
            title = (
                f"{run.rec.service} {run.rec.version}: {verdict.rule} breached, "
                "not caused by this release"
            )
        notice = Notice(
            severity="critical" if verdict.action == "rollback" else "warning",
            kind="decision",
            title=title,
            text=verdict.reason,
            dedup_key=f"{run.rec.id}:{verdict.rule}",
            fields={**_fields(run.rec), "rule": verdict.rule, "action": verdict.action},
        )
        if send:
            self._send(notice)
            return None
        return notice

    # ------------------------------------------------------------------ output
    def _event(
        self,
        rec: DeploymentRecord,
        kind: str,
        message: str,
        *,
        level: str = "info",
        data: Mapping[str, Any] | None = None,
    ) -> None:
        ev = EventRecord(
            ts=self.clock.now(),
            kind=kind,
            message=message,
            level=level,
            deployment_id=rec.id,
            environment=rec.environment,
            service=rec.service,
            data=dict(data or {}),
        )
        self.store.add_event(ev)
        self.reporter(ev)

    def _send(self, notice: Notice) -> None:
        if self._notify is None:
            return
        try:
            self._notify(notice)
        except Exception as exc:  # noqa: BLE001 - a channel must never break a deploy (MON-2)
            self.store.add_event(
                EventRecord(
                    ts=self.clock.now(),
                    kind="notify.failed",
                    level="warning",
                    message=f"notification failed: {type(exc).__name__}",
                )
            )


def _health_check(cfg: ServiceConfig) -> HealthCheck:
    h = cfg.health_check
    return HealthCheck(
        path=h.path,
        interval_s=h.interval,
        timeout_s=h.timeout,
        healthy_threshold=h.healthy_threshold,
        unhealthy_threshold=h.unhealthy_threshold,
    )


def _resolve(step: Step, ctx: Mapping[str, Any]) -> Step:
    """Fill values named :data:`FROM_CONTEXT` from earlier steps' results."""
    if getattr(step, "task_definition", None) == FROM_CONTEXT:
        td = ctx.get("task_definition")
        if not td:
            raise DeploymentError(f"{step.kind} needs a task definition registered earlier")
        return replace(step, task_definition=td)  # type: ignore[call-arg]
    return step


def _fields(rec: DeploymentRecord) -> dict[str, str]:
    return {
        "deployment": rec.id,
        "environment": rec.environment,
        "service": rec.service,
        "version": rec.version,
        "previous": rec.previous_version or "-",
    }
