"""Manual rollback (RB-3): ``deployops rollback DEPLOYMENT_ID [--dry-run]``.

Before anything changes, the guide's checks: which version to return to, whether the database
allows it (a rollback across an irreversible migration is refused unless forced with a
reason), which configuration changes must be reverted with it, and the user impact. While the
previous colour still runs, a rollback is a listener flip; after it was scaled to 0, the
previous task definition is deployed again through the same engine. Either way the rollback is
itself a deployment record linked (``reverts``) to the one it reverts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol

from deployops.clock import Clock
from deployops.config.project import ProjectConfig
from deployops.domain.model import MetricName, MetricQuery, Statistic
from deployops.domain.names import prod_listener
from deployops.domain.native import native_plan
from deployops.domain.plan import (
    BlueGreenParams,
    CheckTrafficMoved,
    Plan,
    RegisterTaskDefinition,
    ScaleService,
    SwitchListener,
    UseTaskDefinition,
    blue_green_plan,
)
from deployops.domain.version import Version
from deployops.engine.operation import Ports
from deployops.engine.planning.capabilities import require_capabilities
from deployops.engine.planning.deploy import (
    DeployRequest,
    LiveState,
    deployment_settings,
    native_deployments,
    native_params,
)
from deployops.errors import ConfigError
from deployops.store import DeploymentRecord, StateStore

__all__ = ["Check", "RollbackPlan", "plan_rollback", "run_rollback"]


class Deployer(Protocol):
    """What planning and starting a rollback needs of the deployment front door
    (:class:`deployops.engine.deploy.Deployer`)."""

    project: ProjectConfig
    environment: str
    ports: Ports
    store: StateStore
    clock: Clock

    def live_state(self, service: str) -> LiveState: ...

    def start(self, request: DeployRequest, plan: Plan, live: LiveState) -> DeploymentRecord: ...


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # ok | warn | block
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    deployment: DeploymentRecord
    mode: str  # flip | redeploy
    to_version: str
    to_task_definition: str
    plan: Plan
    live: LiveState
    checks: tuple[Check, ...]

    @property
    def blocked(self) -> list[Check]:
        return [c for c in self.checks if c.status == "block"]

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment.id,
            "service": self.deployment.service,
            "environment": self.deployment.environment,
            "from_version": self.deployment.version,
            "to_version": self.to_version,
            "to_task_definition": self.to_task_definition,
            "mode": self.mode,
            "checks": [
                {"name": c.name, "status": c.status, "detail": c.detail, "data": c.data}
                for c in self.checks
            ],
            "steps": self.plan.to_json(),
        }


def plan_rollback(deployer: Deployer, deployment_id: str) -> RollbackPlan:
    """Build the rollback of ``deployment_id`` and run the guide's checks. Changes nothing."""
    store = deployer.store
    rec = store.require_deployment(deployment_id)
    if rec.environment != deployer.environment:
        raise ConfigError(
            f"{rec.id} belongs to environment {rec.environment!r}, not {deployer.environment!r}",
            path="--env",
            hint=f"pass -e {rec.environment}",
        )
    if rec.status != "succeeded":
        raise ConfigError(
            f"{rec.id} is {rec.status}: only a deployment that went live can be rolled back"
            + (" (it already was)" if rec.status == "rolled_back" else ""),
            path="DEPLOYMENT_ID",
            hint="`deployops deployments list` shows which deployment is live",
        )
    if not rec.previous_task_definition:
        raise ConfigError(
            f"{rec.id} was the first deployment of {rec.service}: there is no earlier version",
            path="DEPLOYMENT_ID",
            hint="deploy a fixed version instead: `deployops deploy --version X.Y.Z`",
        )
    live = deployer.live_state(rec.service)
    if live.task_definition != rec.task_definition:
        raise ConfigError(
            f"{rec.id} ({rec.version}, {rec.task_definition}) is no longer live: "
            f"{live.task_definition or 'nothing'} is",
            path="DEPLOYMENT_ID",
            hint="roll back the deployment that is live now (`deployops deployments list`)",
        )
    compute = deployer.ports.compute
    prev_td = compute.describe_task_definition(rec.previous_task_definition)
    prev_tg = rec.previous_target_group or live.target_group
    prev_svc = compute.describe_service(prev_tg) if prev_tg != live.target_group else None
    checks: list[Check] = [
        Check(
            "previous version",
            "ok",
            f"return to {prev_td.spec.version} ({prev_td.ref}) from {rec.version}",
            {"version": prev_td.spec.version, "task_definition": prev_td.ref},
        ),
        _database_check(deployer, rec, prev_td.spec.version),
        _config_check(deployer, rec.task_definition, prev_td.ref),
    ]
    native = native_deployments(deployer.ports) is not None
    flip = (
        not native  # the platform moves traffic itself: a rollback is a new deployment of it
        and prev_svc is not None
        and prev_svc.desired > 0
        and prev_svc.healthy >= prev_svc.desired
        and prev_svc.task_definition == prev_td.ref
    )
    prod = prod_listener(rec.service)
    settings = deployment_settings(deployer.project, rec.service)
    if flip:
        plan = Plan(
            strategy="flip",
            steps=(
                SwitchListener(
                    listener=prod, target_group=prev_tg, previous_target_group=live.target_group
                ),
                CheckTrafficMoved(
                    listener=prod, target_group=prev_tg, previous_target_group=live.target_group
                ),
                ScaleService(service=live.target_group, desired_count=0),
            ),
            target_group=prev_tg,
            previous_target_group=live.target_group,
            settings=settings,
        )
    elif native:
        cfg = deployer.project.service(rec.service)
        params = native_params(rec.service, cfg, prev_td.spec, live)
        plan = native_plan(replace(params, reuse_task_definition=prev_td.ref)).with_settings(
            **settings
        )
    else:
        cfg = deployer.project.service(rec.service)
        bg = cfg.blue_green
        plan = blue_green_plan(
            BlueGreenParams(
                service=rec.service,
                spec=prev_td.spec,
                health_check=prev_td.spec.health_check,
                desired_count=bg.desired_count or cfg.desired_count,
                active_colour=live.colour,
                has_active=live.active,
                health_timeout_s=bg.health_timeout,
                stability_window_s=bg.stability_window,
                sample_interval_s=bg.sample_interval,
                target_group_retention_s=bg.target_group_retention,
                smoke_checks=tuple((c.path, c.status) for c in bg.smoke_checks),
                max_error_rate=bg.max_error_rate,
            )
        )
        plan = Plan(
            strategy="redeploy",
            steps=(
                UseTaskDefinition(task_definition=prev_td.ref),
                *(s for s in plan.steps if not isinstance(s, RegisterTaskDefinition)),
            ),
            target_group=plan.target_group,
            previous_target_group=plan.previous_target_group,
            settings=settings,
        )
    require_capabilities(plan, deployer.ports, where="DEPLOYMENT_ID")
    checks.append(_impact_check(deployer, live.target_group, flip))
    return RollbackPlan(
        deployment=rec,
        mode="flip" if flip else "redeploy",
        to_version=prev_td.spec.version,
        to_task_definition=prev_td.ref,
        plan=plan,
        live=live,
        checks=tuple(checks),
    )


def run_rollback(
    deployer: Deployer, rb: RollbackPlan, *, owner: str, force: bool = False, reason: str = ""
) -> DeploymentRecord:
    """Carry out a planned rollback. Blocked checks need ``force`` and a ``reason``."""
    if rb.blocked and not (force and reason.strip()):
        raise ConfigError(
            "rollback refused: " + "; ".join(c.detail for c in rb.blocked),
            path="rollback",
            hint="if you have handled it, pass --force --reason 'what was done'",
        )
    if rb.blocked:
        from deployops.store import AuditRecord

        deployer.store.audit(
            AuditRecord(
                ts=deployer.clock.now(),
                actor=owner,
                action="rollback.forced",
                target=rb.deployment.id,
                detail={"reason": reason, "blocked": [c.detail for c in rb.blocked]},
            )
        )
    request = DeployRequest(
        service=rb.deployment.service,
        version=rb.to_version,
        owner=owner,
        reverts=rb.deployment.id,
        kind="rollback",
        force=True,
    )
    return deployer.start(request, rb.plan, rb.live)


def _database_check(deployer: Deployer, rec: DeploymentRecord, to_version: str) -> Check:
    """RB-3: is there an irreversible migration between the two versions?"""
    cfg = deployer.project.service(rec.service)
    try:
        low, high = Version.parse(to_version), Version.parse(rec.version)
    except ValueError:
        return Check("database compatibility", "warn", "versions are not comparable")
    crossing = sorted(
        (v for v, m in cfg.migrations.items() if m.irreversible and low < Version.parse(v) <= high),
        key=Version.parse,
    )
    if crossing:
        notes = "; ".join(
            f"{v}: {cfg.migrations[v].description or 'irreversible migration'}" for v in crossing
        )
        return Check(
            "database compatibility",
            "block",
            f"{', '.join(crossing)} ran an irreversible migration ({notes}); "
            f"{to_version} may not work with the current schema",
            {"irreversible": crossing},
        )
    reversible = [v for v in cfg.migrations if low < Version.parse(v) <= high]
    detail = (
        f"migrations of {', '.join(reversible)} are reversible: run their down migrations"
        if reversible
        else f"no database migration between {to_version} and {rec.version}"
    )
    return Check("database compatibility", "ok", detail, {"reversible": reversible})


def _config_check(deployer: Deployer, current: str, previous: str) -> Check:
    """RB-3: configuration that changes back with the rollback (secrets by name only)."""
    compute = deployer.ports.compute
    a = compute.describe_task_definition(current).spec
    b = compute.describe_task_definition(previous).spec
    now_env, then_env = dict(a.environment), dict(b.environment)
    now_sec, then_sec = dict(a.secrets), dict(b.secrets)
    changes: list[str] = []
    for key in sorted(set(now_env) | set(then_env)):
        if key == "APP_VERSION":
            continue
        if key not in then_env:
            changes.append(f"-{key} (added by the release, goes away)")
        elif key not in now_env:
            changes.append(f"+{key}={then_env[key]} (comes back)")
        elif now_env[key] != then_env[key]:
            changes.append(f"~{key}: {now_env[key]} -> {then_env[key]}")
    for key in sorted(set(now_sec) ^ set(then_sec)):
        changes.append(f"~secret {key} ({'removed' if key in now_sec else 'restored'})")
    if not changes:
        return Check("configuration", "ok", "no configuration change to revert")
    return Check(
        "configuration",
        "warn",
        f"{len(changes)} setting(s) revert with it: " + ", ".join(changes),
        {"changes": changes},
    )


def _impact_check(deployer: Deployer, live_tg: str, flip: bool) -> Check:
    """RB-3: user impact — the current request rate and the share of traffic that moves."""
    now = deployer.clock.now()
    m = deployer.ports.metrics.query(
        MetricQuery(
            metric=MetricName.REQUEST_COUNT,
            scope=live_tg,
            statistic=Statistic.SUM,
            start=now - timedelta(minutes=5),
            end=now,
            period_s=300,
        )
    )
    how = "an instant listener flip" if flip else "a blue-green redeploy of the previous version"
    if not m.ok:
        return Check(
            "user impact", "warn", f"request rate unknown ({m.error}); 100% moves by {how}"
        )
    total = sum(d.value for d in m.datapoints)
    rate = total / 300.0
    return Check(
        "user impact",
        "ok",
        f"{rate:.1f} requests/s on {live_tg}; 100% of traffic moves by {how}",
        {"requests_per_second": round(rate, 2), "share_moving": 100, "mode": how},
    )
