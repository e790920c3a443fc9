"""Read ``terraform output -json`` into the values an ``aws`` environment needs.

The Terraform tree in ``infrastructure/`` declares these outputs (IAC-1); after
``terraform apply`` the operator saves them with
``terraform -chdir=infrastructure output -json > tf-outputs.json`` and points the environment at
the file (``terraform_outputs: tf-outputs.json`` in ``deployops.yaml``)::

    >>> outputs = load_terraform_outputs(Path("examples/terraform-output.json"))
    >>> outputs.cluster
    'deployops-production'

Every problem in the file is reported at once, as ``<file>:outputs.<name>: <message>``, in one
:class:`~deployops.errors.ConfigError`. Pure apart from reading the one file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from deployops.errors import ConfigError, ConfigIssue

__all__ = ["OUTPUT_NAMES", "TerraformOutputs", "load_terraform_outputs"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TerraformOutputs:
    """The outputs of ``infrastructure/outputs.tf`` that deployops drives a deployment with."""

    cluster: str
    cluster_arn: str
    service: str
    region: str
    prod_listener_arn: str
    test_listener_arn: str
    blue_target_group_arn: str
    green_target_group_arn: str
    db_endpoint: str
    alert_topic_arn: str
    critical_topic_arn: str


_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_ENDPOINT = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$")
_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
    r"(?P<account>\d{12}):(?P<resource>.+)$"
)

_REGENERATE = (
    "regenerate it after `terraform apply` with "
    "`terraform -chdir=infrastructure output -json > tf-outputs.json`"
)


@dataclass(frozen=True, slots=True)
class _Rule:
    """How one Terraform output becomes one field: ``check`` returns an error or ``None``."""

    field: str
    output: str
    check: Callable[[str], str | None]


def _matches(pattern: re.Pattern[str], expected: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if pattern.match(value) else f"{value!r} is not {expected}"

    return check


def _arn(service: str, resource_prefix: str, expected: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        m = _ARN.match(value)
        if m and m["service"] == service and m["resource"].startswith(resource_prefix):
            return None
        return f"{value!r} is not {expected}"

    return check


_ELB = "elasticloadbalancing"
_RULES: Final[tuple[_Rule, ...]] = (
    _Rule("cluster", "cluster_name", _matches(_NAME, "an ECS cluster name")),
    _Rule("cluster_arn", "cluster_arn", _arn("ecs", "cluster/", "an ECS cluster ARN")),
    _Rule("service", "service_name", _matches(_NAME, "an ECS service name")),
    _Rule("region", "region", _matches(_REGION, "an AWS region such as ap-northeast-1")),
    _Rule("prod_listener_arn", "prod_listener_arn", _arn(_ELB, "listener/", "a listener ARN")),
    _Rule("test_listener_arn", "test_listener_arn", _arn(_ELB, "listener/", "a listener ARN")),
    _Rule(
        "blue_target_group_arn",
        "blue_target_group_arn",
        _arn(_ELB, "targetgroup/", "a target group ARN"),
    ),
    _Rule(
        "green_target_group_arn",
        "green_target_group_arn",
        _arn(_ELB, "targetgroup/", "a target group ARN"),
    ),
    _Rule("db_endpoint", "db_endpoint", _matches(_ENDPOINT, "a database endpoint host:port")),
    _Rule("alert_topic_arn", "alert_topic_arn", _arn("sns", "", "an SNS topic ARN")),
    _Rule("critical_topic_arn", "critical_topic_arn", _arn("sns", "", "an SNS topic ARN")),
)

OUTPUT_NAMES: Final[tuple[str, ...]] = tuple(rule.output for rule in _RULES)
"""Names of the Terraform outputs deployops requires, in ``infrastructure/outputs.tf``."""


def load_terraform_outputs(path: Path) -> TerraformOutputs:
    """Load the ``terraform output -json`` file at ``path``.

    Raises :class:`~deployops.errors.ConfigError` listing every missing or malformed output,
    each with its path (``outputs.cluster_name``) and what to do about it.
    """
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the Terraform outputs file: {exc.strerror or exc}",
            path="outputs",
            file=file,
            hint=f"check the `terraform_outputs` path in deployops.yaml, or {_REGENERATE}",
        ) from exc
    try:
        document: object = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            path="outputs",
            file=file,
            hint="the file must be the unmodified output of `terraform output -json`; "
            + _REGENERATE,
        ) from exc
    if not isinstance(document, dict):
        raise ConfigError(
            'expected a JSON object mapping output names to {"value": ...}, '
            f"got {_json_type(document)}",
            path="outputs",
            file=file,
            hint="use `terraform output -json` (all outputs), not `-raw` or one output; "
            + _REGENERATE,
        )
    values, issues = _extract(document, file)
    issues.extend(_cross_check(values, file))
    if issues:
        raise ConfigError(issues, hint=_REGENERATE)
    return TerraformOutputs(**values)


def _extract(document: Mapping[str, object], file: str) -> tuple[dict[str, str], list[ConfigIssue]]:
    """First pass: every required output present, a string, well formed."""
    values: dict[str, str] = {}
    issues: list[ConfigIssue] = []
    for rule in _RULES:
        where = f"outputs.{rule.output}"
        entry = document.get(rule.output)
        if entry is None:
            issues.append(
                ConfigIssue(
                    path=where,
                    message="missing; declare it in infrastructure/outputs.tf, then "
                    "`terraform apply` and export the outputs again",
                    file=file,
                )
            )
            continue
        if not isinstance(entry, dict) or "value" not in entry:
            issues.append(
                ConfigIssue(
                    path=where,
                    message='expected an object with a "value" key, as `terraform output -json` '
                    f"writes it; got {_json_type(entry)}",
                    file=file,
                )
            )
            continue
        value: object = entry["value"]
        if not isinstance(value, str):
            issues.append(
                ConfigIssue(
                    path=f"{where}.value",
                    message=f"expected a string, got {_json_type(value)}; the output in "
                    "infrastructure/outputs.tf must be a single value, not a list or map",
                    file=file,
                )
            )
            continue
        problem = rule.check(value)
        if problem is not None:
            issues.append(
                ConfigIssue(
                    path=f"{where}.value",
                    message=f"{problem}; was the file written by this project's Terraform?",
                    file=file,
                )
            )
            continue
        values[rule.field] = value
    return values, issues


def _cross_check(values: Mapping[str, str], file: str) -> list[ConfigIssue]:
    """Second pass: every ARN belongs to the region the outputs name."""
    region = values.get("region")
    if region is None:
        return []
    issues: list[ConfigIssue] = []
    for rule in _RULES:
        value = values.get(rule.field)
        m = _ARN.match(value) if value is not None else None
        if m is not None and m["region"] != region:
            issues.append(
                ConfigIssue(
                    path=f"outputs.{rule.output}.value",
                    message=f"is in region {m['region']!r} but outputs.region is {region!r}; "
                    "the file mixes outputs of two stacks",
                    file=file,
                )
            )
    return issues


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
