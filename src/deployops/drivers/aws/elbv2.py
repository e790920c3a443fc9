"""``ElbTraffic``: the ``Traffic`` port on ELBv2 (an Application Load Balancer).

- The switch is ``ModifyListener`` with one ``forward`` default action, then a read-back with
  ``DescribeListeners``: a listener that does not read back the requested group is an error,
  never a silent half-switch (DEP-3).
- Partial shifts are a weighted ``ForwardConfig`` (capability ``weights``).
- Target health comes from ``DescribeTargetHealth``.
- In ``aws.mode: ecs-native`` ECS moves traffic by the listener *rules* it was given
  (``advancedConfiguration``); there a listener reads as where its rule forwards, and
  ``switch_listener`` is refused (ECS owns the rule; deployops asks ECS to roll back).
- A target group Terraform created is never deleted (Terraform owns it): "delete" deregisters
  its targets. A group deployops created itself is deleted. Either way only when no listener
  forwards to it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from deployops.clock import Clock
from deployops.domain.model import HealthCheck, Listener, TargetGroup, TargetHealth, TargetState
from deployops.drivers.aws._errors import error_code, map_aws_errors
from deployops.drivers.aws._resources import AwsResources
from deployops.errors import DriverError, NotFoundError, UnsupportedError

__all__ = ["ElbTraffic"]

_STATES = {
    "initial": TargetState.INITIAL,
    "healthy": TargetState.HEALTHY,
    "unhealthy": TargetState.UNHEALTHY,
    "unhealthy.draining": TargetState.DRAINING,
    "draining": TargetState.DRAINING,
    "unused": TargetState.UNUSED,
    "unavailable": TargetState.UNHEALTHY,
}


class ElbTraffic:
    """Listeners and target groups of one ALB, by the engine's names (``web-prod``...)."""

    name: ClassVar[str] = "elbv2"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"atomic_switch", "test_listener", "health_checks", "drain", "weights"}
    )

    def __init__(
        self, *, client: Any, resources: AwsResources, clock: Clock, port: int = 8080
    ) -> None:
        self.client = client
        self.resources = resources
        self.clock = clock
        self.port = port
        self._arns: dict[str, str] = dict(resources.target_groups)
        self._owned = frozenset(resources.target_groups)
        self._hosts: dict[str, str] = {}
        self._lbs: dict[str, str] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ names <-> ARNs
    def _tg_arn(self, name: str) -> str | None:
        with self._lock:
            found = self._arns.get(name)
        if found:
            return found
        with map_aws_errors("elbv2:DescribeTargetGroups", resource=f"target group {name}"):
            try:
                groups = self.client.describe_target_groups(Names=[name])["TargetGroups"]
            except Exception as exc:
                if error_code(exc) == "TargetGroupNotFound":
                    return None
                raise
        if not groups:
            return None
        arn = str(groups[0]["TargetGroupArn"])
        with self._lock:
            self._arns[name] = arn
        return arn

    def _need_tg(self, name: str) -> str:
        arn = self._tg_arn(name)
        if arn is None:
            raise NotFoundError(
                f"target group {name!r} does not exist",
                path="environments.<env>.aws",
                hint="create it with `terraform -chdir=infrastructure apply`, or check the "
                "terraform_outputs file named in deployops.yaml",
            )
        return arn

    def target_group_arn(self, name: str) -> str:
        """The ARN of target group ``name``; ``NotFoundError`` naming the fix if absent."""
        return self._need_tg(name)

    def metric_ids(self, name: str) -> tuple[str, str]:
        """(target group ARN, load balancer ARN) of ``name``: CloudWatch's dimensions."""
        arn = self._need_tg(name)
        with self._lock:
            cached = self._lbs.get(arn)
        if cached is not None:
            return arn, cached
        with map_aws_errors("elbv2:DescribeTargetGroups", resource=f"target group {name}"):
            raw = self.client.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"]
        lbs = raw[0].get("LoadBalancerArns") or [""] if raw else [""]
        with self._lock:
            self._lbs[arn] = str(lbs[0])
        return arn, str(lbs[0])

    def _tg_name(self, arn: str) -> str:
        with self._lock:
            for name, known in self._arns.items():
                if known == arn:
                    return name
        # arn:...:targetgroup/<name>/<id>
        return arn.split(":targetgroup/", 1)[-1].split("/", 1)[0]

    def _listener_arn(self, name: str) -> str:
        arn = self.resources.listeners.get(name)
        if not arn:
            known = ", ".join(sorted(self.resources.listeners)) or "none"
            raise NotFoundError(
                f"listener {name!r} is not known on this environment (known: {known})",
                path="environments.<env>.aws.terraform_outputs",
                hint="point terraform_outputs in deployops.yaml at the file written by "
                "`terraform -chdir=infrastructure output -json > tf-outputs.json`",
            )
        return arn

    # ------------------------------------------------------------------ target groups
    def create_target_group(self, name: str, *, health_check: HealthCheck) -> TargetGroup:
        if self._tg_arn(name) is None:
            if not self.resources.vpc_id:
                raise NotFoundError(
                    f"target group {name!r} does not exist and no VPC is known to create it in",
                    path="environments.<env>.aws.terraform_outputs",
                    hint="create both colours' groups with "
                    "`terraform -chdir=infrastructure apply` (outputs blue_target_group_arn, "
                    "green_target_group_arn)",
                )
            with map_aws_errors("elbv2:CreateTargetGroup", resource=f"target group {name}"):
                made = self.client.create_target_group(
                    Name=name,
                    Protocol="HTTP",
                    Port=self.port,
                    VpcId=self.resources.vpc_id,
                    TargetType="ip",
                    HealthCheckProtocol="HTTP",
                    HealthCheckPath=health_check.path,
                    HealthCheckIntervalSeconds=max(5, int(health_check.interval_s)),
                    HealthCheckTimeoutSeconds=max(2, int(health_check.timeout_s)),
                    HealthyThresholdCount=max(2, health_check.healthy_threshold),
                    UnhealthyThresholdCount=max(2, health_check.unhealthy_threshold),
                    Matcher={"HttpCode": str(health_check.expected_status)},
                )["TargetGroups"][0]
            with self._lock:
                self._arns[name] = str(made["TargetGroupArn"])
        found = self.describe_target_group(name)
        if found is None:  # pragma: no cover - created above
            raise DriverError("elbv2", "CreateTargetGroup", f"{name} did not read back")
        return found

    def describe_target_group(self, name: str) -> TargetGroup | None:
        arn = self._tg_arn(name)
        if arn is None:
            return None
        with map_aws_errors("elbv2:DescribeTargetGroups", resource=f"target group {name}"):
            try:
                raw = self.client.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"]
            except Exception as exc:
                if error_code(exc) == "TargetGroupNotFound":
                    return None
                raise
        if not raw:
            return None
        with map_aws_errors("elbv2:DescribeTargetHealth", resource=f"target group {name}"):
            health = self.client.describe_target_health(TargetGroupArn=arn)
        return TargetGroup(
            name=name,
            health_check=_health_check_from(raw[0]),
            targets=tuple(_target_from(d) for d in health.get("TargetHealthDescriptions", [])),
        )

    def list_target_groups(self) -> Sequence[str]:
        with self._lock:
            names = list(self._arns)
        return [n for n in names if self.describe_target_group(n) is not None]

    def delete_target_group(self, name: str) -> None:
        arn = self._tg_arn(name)
        if arn is None:
            return
        for listener in self.resources.listeners:
            if name in dict(self.describe_listener(listener).forwards):
                raise DriverError(
                    "elbv2",
                    "DeleteTargetGroup",
                    f"{name} still receives traffic from listener {listener}",
                    hint=f"switch {listener} to the other colour first "
                    "(`deployops rollback` or a deploy)",
                )
        if name in self._owned:
            # Terraform owns the group: empty it instead of deleting it.
            with map_aws_errors("elbv2:DescribeTargetHealth", resource=f"target group {name}"):
                health = self.client.describe_target_health(TargetGroupArn=arn)
            targets = [
                {k: v for k, v in d["Target"].items() if k in ("Id", "Port", "AvailabilityZone")}
                for d in health.get("TargetHealthDescriptions", [])
            ]
            if targets:
                with map_aws_errors("elbv2:DeregisterTargets", resource=f"target group {name}"):
                    self.client.deregister_targets(TargetGroupArn=arn, Targets=targets)
            return
        with map_aws_errors("elbv2:DeleteTargetGroup", resource=f"target group {name}"):
            self.client.delete_target_group(TargetGroupArn=arn)
        with self._lock:
            self._arns.pop(name, None)

    # ------------------------------------------------------------------ listeners
    def describe_listener(self, name: str) -> Listener:
        arn = self._listener_arn(name)
        with map_aws_errors("elbv2:DescribeListeners", resource=f"listener {name}"):
            raw = self.client.describe_listeners(ListenerArns=[arn])["Listeners"]
        if not raw:
            raise NotFoundError(f"listener {name!r} ({arn}) does not exist")
        listener = dict(raw[0])
        rule = self.resources.listener_rules.get(name)
        if rule:
            listener["DefaultActions"] = self._rule_actions(rule)
        return self._listener_from(name, listener)

    def _rule_actions(self, rule_arn: str) -> list[dict[str, Any]]:
        with map_aws_errors("elbv2:DescribeRules", resource=rule_arn):
            try:
                raw = self.client.describe_rules(RuleArns=[rule_arn])["Rules"]
            except Exception as exc:
                if error_code(exc) == "RuleNotFound":
                    raw = []
                else:
                    raise
        if not raw:
            raise NotFoundError(
                f"listener rule {rule_arn} does not exist",
                path="environments.<env>.aws.terraform_outputs",
                hint="export `terraform -chdir=infrastructure output -json > tf-outputs.json` "
                "again (outputs prod_listener_rule_arn, test_listener_rule_arn)",
            )
        return list(raw[0].get("Actions", []))

    def rule_target_arn(self, rule_arn: str) -> str:
        """The target group ARN a listener rule sends (most of) its traffic to."""
        best, weight = "", -1
        for action in self._rule_actions(rule_arn):
            if action.get("Type") != "forward":
                continue
            groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
            if not groups and action.get("TargetGroupArn"):
                groups = [{"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}]
            for g in groups:
                if int(g.get("Weight", 1)) > weight:
                    best, weight = str(g["TargetGroupArn"]), int(g.get("Weight", 1))
        return best

    def _not_ours(self, name: str) -> None:
        if name in self.resources.listener_rules:
            raise UnsupportedError(
                f"ECS moves {name} in aws.mode ecs-native; deployops does not switch it",
                path="environments.<env>.aws.mode",
                hint="`deployops rollback DEPLOYMENT_ID` asks ECS to deploy the previous "
                "revision; use aws.mode: services for listener switches by deployops",
            )

    def switch_listener(self, name: str, target_group: str) -> Listener:
        self._not_ours(name)
        arn = self._listener_arn(name)
        tg_arn = self._need_tg(target_group)
        with map_aws_errors("elbv2:ModifyListener", resource=f"listener {name}"):
            self.client.modify_listener(
                ListenerArn=arn,
                DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
            )
        after = self.describe_listener(name)
        if after.forwards != ((target_group, 100),):
            raise DriverError(
                "elbv2",
                "ModifyListener",
                f"listener {name} reads back {after.forwards} after switching to {target_group}",
                hint=f"check the listener in the console; `deployops health` shows where {name} "
                "points",
            )
        return after

    def set_weights(self, name: str, weights: Mapping[str, int]) -> Listener:
        self._not_ours(name)
        arn = self._listener_arn(name)
        groups = [
            {"TargetGroupArn": self._need_tg(tg), "Weight": int(weight)}
            for tg, weight in weights.items()
        ]
        with map_aws_errors("elbv2:ModifyListener", resource=f"listener {name}"):
            self.client.modify_listener(
                ListenerArn=arn,
                DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}],
            )
        after = self.describe_listener(name)
        wanted = {tg: int(w) for tg, w in weights.items() if int(w) > 0}
        if {tg: w for tg, w in after.forwards if w > 0} != wanted:
            raise DriverError(
                "elbv2",
                "ModifyListener",
                f"listener {name} reads back {after.forwards}, expected weights {wanted}",
            )
        return after

    def describe_rule(self, rule_arn: str) -> tuple[tuple[str, int], ...]:
        """Where a listener rule forwards (``ecs-native``: ECS shifts its weights)."""
        with map_aws_errors("elbv2:DescribeRules", resource=rule_arn):
            raw = self.client.describe_rules(RuleArns=[rule_arn])["Rules"]
        if not raw:
            raise NotFoundError(f"listener rule {rule_arn} does not exist")
        return self._listener_from("rule", {"DefaultActions": raw[0].get("Actions", [])}).forwards

    def _listener_from(self, name: str, raw: Mapping[str, Any]) -> Listener:
        forwards: list[tuple[str, int]] = []
        for action in raw.get("DefaultActions", []):
            if action.get("Type") != "forward":
                continue
            config = action.get("ForwardConfig") or {}
            groups = config.get("TargetGroups") or []
            if len(groups) > 1:
                # a group at weight 0 takes no request: only the others are forwards, and a
                # single one left is a plain switch (as the local platform reads back)
                weighted = [
                    (self._tg_name(str(g["TargetGroupArn"])), int(g.get("Weight", 1)))
                    for g in groups
                    if int(g.get("Weight", 1)) > 0
                ]
                forwards += [(weighted[0][0], 100)] if len(weighted) == 1 else weighted
            elif action.get("TargetGroupArn") or groups:
                single = action.get("TargetGroupArn") or groups[0]["TargetGroupArn"]
                forwards.append((self._tg_name(str(single)), 100))
        return Listener(
            name=name,
            port=int(raw.get("Port", 0)),
            forwards=tuple(forwards),
            host=self._host(str(raw.get("LoadBalancerArn", ""))),
        )

    def _host(self, lb_arn: str) -> str:
        if self.resources.alb_dns_name:
            return self.resources.alb_dns_name
        if not lb_arn:
            return ""
        with self._lock:
            if lb_arn in self._hosts:
                return self._hosts[lb_arn]
        with map_aws_errors("elbv2:DescribeLoadBalancers", resource=lb_arn):
            found = self.client.describe_load_balancers(LoadBalancerArns=[lb_arn])
        host = str((found.get("LoadBalancers") or [{}])[0].get("DNSName", ""))
        with self._lock:
            self._hosts[lb_arn] = host
        return host

    def close(self) -> None:
        return None


def _health_check_from(raw: Mapping[str, Any]) -> HealthCheck:
    matcher = str((raw.get("Matcher") or {}).get("HttpCode", "200")).split(",")[0].split("-")[0]
    return HealthCheck(
        path=str(raw.get("HealthCheckPath", "/health")),
        interval_s=float(raw.get("HealthCheckIntervalSeconds", 30)),
        timeout_s=float(raw.get("HealthCheckTimeoutSeconds", 5)),
        healthy_threshold=int(raw.get("HealthyThresholdCount", 5)),
        unhealthy_threshold=int(raw.get("UnhealthyThresholdCount", 2)),
        expected_status=int(matcher) if matcher.isdigit() else 200,
    )


def _target_from(raw: Mapping[str, Any]) -> TargetHealth:
    target = raw.get("Target", {})
    health = raw.get("TargetHealth", {})
    state = str(health.get("State", "initial"))
    address = f"{target.get('Id', '')}:{target.get('Port', '')}"
    return TargetHealth(
        target_id=address,
        address=address,
        state=_STATES.get(state, TargetState.UNHEALTHY),
        reason=str(health.get("Description") or health.get("Reason") or ""),
    )
