"""``AppAutoScaler``: the scaler on Application Auto Scaling for an ECS service.

IAC-3 / IAC-5: a scalable target ``ecs:service:DesiredCount`` with min 2 / max 10 and a
target-tracking policy on ``ECSServiceAverageCPUUtilization`` 70 with 300 s cooldowns. On AWS
the tracking itself is Application Auto Scaling's; deployops registers it idempotently and
sets the desired count directly only for an alarm's ``scale_out`` action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from deployops.clock import Clock
from deployops.domain.model import MetricName
from deployops.domain.scaling import ScalingPolicy
from deployops.drivers.aws._errors import map_aws_errors
from deployops.drivers.aws._resources import AwsResources
from deployops.errors import UnsupportedError

__all__ = ["AppAutoScaler", "ScalingState", "policy_name", "scale_out_policy_name"]

_PREDEFINED = {
    MetricName.CPU: "ECSServiceAverageCPUUtilization",
    MetricName.MEMORY: "ECSServiceAverageMemoryUtilization",
}


def policy_name(ecs_service: str, metric: MetricName) -> str:
    return f"{ecs_service}-{metric.value}-target-tracking"


def scale_out_policy_name(ecs_service: str) -> str:
    """The step-scaling policy infrastructure/modules/ecs gives each service for the MON-1
    scale-out alarms (``aws_appautoscaling_policy.scale_out``)."""
    return f"{ecs_service}-alarm-scale-out"


@dataclass(frozen=True, slots=True)
class ScalingState:
    resource_id: str
    min_capacity: int
    max_capacity: int
    policies: tuple[str, ...]


class AppAutoScaler:
    name: ClassVar[str] = "application-autoscaling"
    capabilities: ClassVar[frozenset[str]] = frozenset({"target_tracking", "set_capacity"})

    def __init__(
        self,
        *,
        client: Any,
        resources: AwsResources,
        clock: Clock,
        policy: ScalingPolicy | None = None,
    ) -> None:
        self.client = client
        self.resources = resources
        self.clock = clock
        self.policy = policy or ScalingPolicy()

    def follow_desired(self, service: str, desired: int) -> None:
        """Keep a registered scalable target from undoing a colour change: the colour going
        idle gets min = max = 0, the colour going live the policy's bounds (IAC-3). A service
        without a scalable target is left alone."""
        rid = self.resource_id(service)
        with map_aws_errors("application-autoscaling:DescribeScalableTargets", resource=rid):
            found = self.client.describe_scalable_targets(
                ServiceNamespace="ecs", ResourceIds=[rid]
            ).get("ScalableTargets", [])
        if not found:
            return
        low, high = (0, 0) if desired == 0 else (self.policy.min_capacity, self.policy.max_capacity)
        if (found[0].get("MinCapacity"), found[0].get("MaxCapacity")) == (low, high):
            return
        with map_aws_errors("application-autoscaling:RegisterScalableTarget", resource=rid):
            self.client.register_scalable_target(
                ServiceNamespace="ecs",
                ResourceId=rid,
                ScalableDimension="ecs:service:DesiredCount",
                MinCapacity=low,
                MaxCapacity=max(low, high),
            )

    def resource_id(self, service: str) -> str:
        return f"service/{self.resources.cluster}/{self.resources.ecs_service(service)}"

    def scale_out_policy_arn(self, ecs_service: str) -> str:
        """The ARN of ``ecs_service``'s alarm scale-out policy, or "" when it has none."""
        with map_aws_errors(
            "application-autoscaling:DescribeScalingPolicies", resource=f"service {ecs_service}"
        ):
            found = self.client.describe_scaling_policies(
                ServiceNamespace="ecs",
                ResourceId=f"service/{self.resources.cluster}/{ecs_service}",
                PolicyNames=[scale_out_policy_name(ecs_service)],
            ).get("ScalingPolicies", [])
        return str(found[0]["PolicyARN"]) if found else ""

    def apply_policy(self, service: str, policy: ScalingPolicy) -> ScalingState:
        """Register the scalable target and its target-tracking policy (idempotent: both
        calls are upserts on AWS's side)."""
        predefined = _PREDEFINED.get(policy.metric)
        if predefined is None:
            raise UnsupportedError(
                f"target tracking on {policy.metric} is not available on aws",
                path="autoscaling.metric",
                hint="use CPUUtilization or MemoryUtilization",
            )
        rid = self.resource_id(service)
        with map_aws_errors("application-autoscaling:RegisterScalableTarget", resource=rid):
            self.client.register_scalable_target(
                ServiceNamespace="ecs",
                ResourceId=rid,
                ScalableDimension="ecs:service:DesiredCount",
                MinCapacity=policy.min_capacity,
                MaxCapacity=policy.max_capacity,
            )
        name = policy_name(self.resources.ecs_service(service), policy.metric)
        with map_aws_errors("application-autoscaling:PutScalingPolicy", resource=rid):
            self.client.put_scaling_policy(
                PolicyName=name,
                ServiceNamespace="ecs",
                ResourceId=rid,
                ScalableDimension="ecs:service:DesiredCount",
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": policy.target,
                    "PredefinedMetricSpecification": {"PredefinedMetricType": predefined},
                    "ScaleOutCooldown": int(policy.scale_out_cooldown_s),
                    "ScaleInCooldown": int(policy.scale_in_cooldown_s),
                    "DisableScaleIn": False,
                },
            )
        return self.describe(service)

    def describe(self, service: str) -> ScalingState:
        rid = self.resource_id(service)
        with map_aws_errors("application-autoscaling:DescribeScalableTargets", resource=rid):
            targets = self.client.describe_scalable_targets(
                ServiceNamespace="ecs", ResourceIds=[rid]
            ).get("ScalableTargets", [])
        with map_aws_errors("application-autoscaling:DescribeScalingPolicies", resource=rid):
            policies = self.client.describe_scaling_policies(
                ServiceNamespace="ecs", ResourceId=rid
            ).get("ScalingPolicies", [])
        t = targets[0] if targets else {}
        return ScalingState(
            resource_id=rid,
            min_capacity=int(t.get("MinCapacity", 0)),
            max_capacity=int(t.get("MaxCapacity", 0)),
            policies=tuple(sorted(str(p["PolicyName"]) for p in policies)),
        )

    def suspend(self, service: str, *, suspended: bool) -> None:
        """Hold scale-in while a deploy runs so tracking does not fight the switch."""
        rid = self.resource_id(service)
        with map_aws_errors("application-autoscaling:RegisterScalableTarget", resource=rid):
            self.client.register_scalable_target(
                ServiceNamespace="ecs",
                ResourceId=rid,
                ScalableDimension="ecs:service:DesiredCount",
                SuspendedState={
                    "DynamicScalingInSuspended": suspended,
                    "DynamicScalingOutSuspended": False,
                    "ScheduledScalingSuspended": suspended,
                },
            )

    def close(self) -> None:
        return None
