"""Deployments as operations: the deploy and rollback kinds, and :class:`Deployer`, the one
front door the CLI, the controller and the tests use.

A deploy is planned by :class:`~deployops.engine.planning.deploy.DeployPlanner` (settings
frozen into the plan), run by the generic :class:`~deployops.engine.runner.Runner` with the
handlers of :func:`~deployops.engine.steps.deployment_handlers`, and a failed step goes to
:func:`~deployops.engine.recovery.recover_deployment` (DEP-7, RB-2). Before each step its
intent is stored, after it the outcome; ``resume`` continues an interrupted deployment at its
first unfinished step with the plan and settings it started with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from deployops.clock import Clock
from deployops.config.project import ProjectConfig
from deployops.domain.names import lock_key
from deployops.domain.plan import Plan
from deployops.engine.cleanup import run_due_deletions
from deployops.engine.events import Notice, Notify, Reporter, null_reporter
from deployops.engine.observe.health import Observer, ObserverFactory
from deployops.engine.observe.watch import ObserveHandler, operation_fields
from deployops.engine.operation import Env, NewOperation, OperationKind, Ports, StepContext
from deployops.engine.planning.deploy import (
    AppEnvironment,
    DeployPlanner,
    DeployRequest,
    LiveState,
    deployment_settings,
)
from deployops.engine.recovery import guard_traffic, recover_deployment
from deployops.engine.runner import Runner
from deployops.engine.steps import deployment_handlers
from deployops.engine.watch_after import begin_watch
from deployops.errors import ConfigError, DeployopsError
from deployops.ports import Compute, Metrics, Prober, Traffic
from deployops.store import DeploymentRecord, EventRecord, OperationRecord, StateStore

__all__ = [
    "DEPLOY",
    "DEPLOYMENT_KINDS",
    "ROLLBACK",
    "DeployRequest",
    "Deployer",
    "LiveState",
    "lock_key",
]


def _started(op: OperationRecord) -> str:
    rec = DeploymentRecord.from_operation(op)
    return (
        f"{rec.kind} of {rec.service} {rec.previous_version or '(none)'} -> {rec.version} "
        f"started ({rec.strategy})"
    )


def _succeeded(ctx: StepContext) -> None:
    # The watch after the switch: this deploy goes under watch, older watches of the service
    # end, and a rollback the watch started is recorded and reported (engine/watch_after.py).
    begin_watch(ctx)
    done = DeploymentRecord.from_operation(ctx.op)
    ctx.event("deploy.succeeded", f"{done.service} {done.version} is live in {done.environment}")
    ctx.send(
        Notice(
            severity="info",
            kind="deployment.succeeded",
            title=f"{done.service} {done.version} deployed to {done.environment}",
            text=f"{done.kind} {done.id} succeeded ({done.strategy})",
            dedup_key=done.id,
            fields=operation_fields(ctx),
        )
    )


DEPLOY = OperationKind(
    name="deploy",
    id_prefix="dep",
    events="deploy",
    on_failure=recover_deployment,
    on_success=_succeeded,
    before_resume=guard_traffic,
    describe=_started,
)
ROLLBACK = OperationKind(
    name="rollback",
    id_prefix="dep",
    events="deploy",
    on_failure=recover_deployment,
    on_success=_succeeded,
    before_resume=guard_traffic,
    describe=_started,
)
DEPLOYMENT_KINDS = {k.name: k for k in (DEPLOY, ROLLBACK)}


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
        app_environment: AppEnvironment | None = None,
        crash_point: Callable[[str, int, str], None] | None = None,
        extra_ports: Mapping[type[Any], object] | None = None,
    ) -> None:
        self.project = project
        self.environment = environment
        # extra_ports: what a platform adds (NativeDeployments: it carries out blue/green)
        self.ports = Ports(
            compute=compute,
            traffic=traffic,
            metrics=metrics,
            prober=prober,
            extra=dict(extra_ports or {}),
        )
        self.store = store
        self.clock = clock
        self.env = Env(
            ports=self.ports,
            store=store,
            clock=clock,
            reporter=reporter,
            notify=notify,
            crash_point=crash_point,
        )
        self.planner = DeployPlanner(
            project=project,
            environment=environment,
            ports=self.ports,
            clock=clock,
            app_environment=app_environment,
        )
        self.runner = Runner(env=self.env, handlers=deployment_handlers(ObserveHandler(observer)))

    @property
    def reporter(self) -> Reporter:
        return self.env.reporter

    @reporter.setter
    def reporter(self, reporter: Reporter) -> None:
        """Live output can be re-pointed after construction (a test watching the steps)."""
        self.env = replace(self.env, reporter=reporter)
        self.runner.env = self.env

    # ------------------------------------------------------------------ planning
    def live_state(self, service: str) -> LiveState:
        return self.planner.live_state(service)

    def plan(self, request: DeployRequest) -> tuple[Plan, LiveState]:
        """Validate the request and build its plan. Changes nothing."""
        return self.planner.plan(request)

    def settings(self, service: str) -> dict[str, object]:
        """The settings a plan of ``service`` made now would freeze."""
        return deployment_settings(self.project, service)

    # ------------------------------------------------------------------ running
    def refuse(self, request: DeployRequest, error: DeployopsError) -> None:
        """Record a refused request (bad input, lock held): an event, nothing else."""
        self.runner.refuse(
            DEPLOYMENT_KINDS.get(request.kind, DEPLOY),
            environment=self.environment,
            target=request.service,
            what=f"{request.kind} of {request.service} {request.version}",
            error=error,
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
        kind = DEPLOYMENT_KINDS.get(request.kind)
        if kind is None:
            raise ConfigError(
                f"unknown deployment kind {request.kind!r}",
                path="kind",
                hint=f"use {' or '.join(DEPLOYMENT_KINDS)}",
            )
        if not plan.settings:
            plan = plan.with_settings(**self.settings(request.service))
        # Old target groups whose retention has passed go now, under this service's lock
        # (DEP-4), even where no controller runs.
        run_due_deletions(
            self.env, environment=self.environment, service=request.service, owner=request.owner
        )
        op = self.runner.start(
            NewOperation(
                kind=kind,
                environment=self.environment,
                target=request.service,
                owner=request.owner,
                plan=plan,
                reverts=request.reverts,
                summary=f"{request.kind} {request.service} {request.version}",
                detail={
                    "version": request.version,
                    "strategy": plan.strategy,
                    "task_definition": "",
                    "target_group": plan.target_group,
                    "previous_version": live.version if live.active else "",
                    "previous_task_definition": live.task_definition if live.active else "",
                    "previous_target_group": plan.previous_target_group,
                },
            )
        )
        return DeploymentRecord.from_operation(op)

    def resume(
        self, deployment_id: str, *, owner: str, owner_alive: Callable[[str], bool]
    ) -> DeploymentRecord:
        """Continue an interrupted deployment from its first unfinished step, judged by the
        settings frozen into its plan."""
        rec = self.store.find_operation(deployment_id, kinds=tuple(DEPLOYMENT_KINDS))
        if rec is not None and rec.status == "running" and not rec.plan.get("settings"):
            self._freeze_legacy(rec.id, rec.target)
        op = self.runner.resume(
            deployment_id, kinds=DEPLOYMENT_KINDS, owner=owner, owner_alive=owner_alive
        )
        return DeploymentRecord.from_operation(op)

    def _freeze_legacy(self, op_id: str, service: str) -> None:
        """A deployment planned before plans carried their settings: freeze today's once,
        and say so (every plan made since carries its own)."""
        op = self.store.get_operation(op_id)
        if op is None:
            return
        plan = dict(op.plan)
        plan["settings"] = self.settings(service)
        self.store.update_operation(op_id, plan=plan, updated_at=self.clock.now())
        self.store.add_event(
            EventRecord(
                ts=self.clock.now(),
                kind="plan.settings_frozen",
                level="warning",
                deployment_id=op_id,
                environment=self.environment,
                service=service,
                message=f"{op_id} was planned without frozen settings; froze the current "
                "deployops.yaml settings for the rest of it",
            )
        )
