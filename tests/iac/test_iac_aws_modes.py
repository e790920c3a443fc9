"""The ECS module builds what each ``aws.mode`` needs, and the aws platform reads the
``terraform output -json`` shape of the real outputs.

``terraform fmt -check`` runs here (Terraform is in the base image). ``terraform validate``
needs the AWS provider, which cannot be downloaded on this machine: it runs only where
``infrastructure/.terraform/providers`` exists (after ``terraform init``) and is skipped, saying
so, elsewhere.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deployops.config.project import load_project
from deployops.drivers.aws import resources_for
from deployops.errors import ConfigError
from tests.iac.test_iac_terraform import INFRA, ROOT, one, tf

TERRAFORM = shutil.which("terraform")


@pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")
def test_terraform_fmt_check_passes() -> None:
    done = subprocess.run(
        [str(TERRAFORM), "fmt", "-check", "-recursive", "-diff", str(INFRA)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"run `terraform fmt -recursive infrastructure`:\n{done.stdout}"


@pytest.mark.skipif(
    TERRAFORM is None or not (INFRA / ".terraform" / "providers").is_dir(),
    reason="terraform validate needs the AWS provider (run `terraform -chdir=infrastructure "
    "init -backend=false` where the provider can be downloaded)",
)
def test_terraform_validate_where_the_provider_is_present() -> None:
    done = subprocess.run(
        [str(TERRAFORM), f"-chdir={INFRA}", "validate", "-no-color"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_services_mode_one_service_per_colour_idle_green_at_zero() -> None:
    """aws.mode services: blue and green services, green (idle) at 0 tasks and 0 capacity;
    deployops owns desired count, task definition, load balancer and the capacity bounds."""
    ecs = tf("modules/ecs")
    assert ecs.default("deployment_mode") == "services"
    keys = ecs.locals["service_keys"]
    assert '["blue", "green"]' in keys and '["native"]' in keys
    service = ecs.resource("aws_ecs_service", "this")
    assert service["name"] == (
        '${var.deployment_mode == "services" ? "${var.name}-${each.key}" : var.name}'
    )
    assert set(one(service["lifecycle"])["ignore_changes"]) >= {
        "desired_count",
        "task_definition",
        "load_balancer",
    }
    target = ecs.resource("aws_appautoscaling_target", "this")
    assert set(one(target["lifecycle"])["ignore_changes"]) == {"min_capacity", "max_capacity"}


def test_ecs_native_mode_has_listener_rules_and_the_infrastructure_role() -> None:
    ecs = tf("modules/ecs")
    rules = ecs.resource("aws_lb_listener_rule", "native")
    assert "ecs-native" in rules["for_each"]
    assert one(rules["lifecycle"])["ignore_changes"] == ["action"]
    attach = ecs.resource("aws_iam_role_policy_attachment", "ecs_infrastructure")
    assert attach["policy_arn"].endswith("AmazonECSInfrastructureRolePolicyForLoadBalancers")
    for name in ("prod_listener_rule_arn", "test_listener_rule_arn", "ecs_infrastructure_role_arn"):
        assert name in tf(".").outputs


def _project(tmp_path: Path, mode: str = "services") -> Path:
    shutil.copy(ROOT / "examples" / "terraform-output.json", tmp_path / "tf-outputs.json")
    doc = {
        "project": "shop",
        "environments": {
            "production": {
                "platform": "aws",
                "aws": {"terraform_outputs": "tf-outputs.json", "mode": mode},
            }
        },
        "services": {"web": {"port": 80, "image": "repo/web:{version}"}},
    }
    path = tmp_path / "deployops.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_the_aws_platform_reads_the_real_outputs_shape(tmp_path: Path) -> None:
    """examples/terraform-output.json has exactly the root outputs (test_iac_terraform_outputs)
    and is what the aws platform is built from."""
    res = resources_for(load_project(_project(tmp_path)), "production")
    assert res.cluster == "deployops-production"
    assert res.services == {
        "web-blue": "deployops-production-blue",
        "web-green": "deployops-production-green",
    }
    assert set(res.listeners) == {"web-prod", "web-test"}
    assert res.target_groups["web-green"].endswith("/deployops-production-green/fedcba9876543210")
    assert res.subnets and res.security_groups and res.vpc_id
    assert res.execution_role_arn.endswith("role/deployops-production-execution")
    assert res.alert_topic_arn.endswith(":deployops-production-alerts")


def test_a_mode_the_stack_was_not_built_for_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="deployment_mode=ecs-native"):
        resources_for(load_project(_project(tmp_path, "ecs-native")), "production")
