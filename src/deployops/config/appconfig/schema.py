"""The schema of the application's settings (CFG-1..5) and how a project extends it in YAML.

The built-in schema is the operations guide's (§3): ``PORT``, ``NODE_ENV``, ``APP_NAME`` (CFG-2),
``DB_*`` (CFG-3, required in production, the password a secret reference there), ``REDIS_*``
(CFG-4), ``AWS_REGION`` and ``S3_BUCKET`` (CFG-5). ``config/schema.yaml`` extends or tightens it
without Python::

    extends: default            # or "none" to start from an empty schema
    keys:
      APP_NAME: {required_in: ["*"], pattern: "[a-z][a-z0-9-]+"}
      LOG_LEVEL: {allowed: [debug, info, warn, error], default: info, from_env: true}
      JWT_SECRET: {secret: true, required_in: [staging, production]}

A key's attributes: ``type`` (str, int, bool), ``description``, ``default``, ``required_in``
(environment names, ``"*"`` for all), ``allowed``, ``pattern`` (a full-match regular
expression), ``min``/``max`` (int), ``format`` (aws_region, s3_bucket, hostname), ``secret``
(the value is sensitive: always redacted, and a ``secret://NAME`` reference outside
``literal_allowed_in``, default ``[development]``), ``from_env`` (``true`` or a variable name:
the process environment may override it), ``equals_environment`` (the value must be the
environment's name and defaults to it), ``platform_managed`` (the platform sets it per replica,
so a deploy never forces the default).
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deployops.errors import ConfigIssue

__all__ = [
    "AWS_REGIONS",
    "DEFAULT_SCHEMA",
    "FORMATS",
    "TYPES",
    "AppSchema",
    "FieldSpec",
    "did_you_mean",
    "parse_schema",
]

TYPES = ("str", "int", "bool")
FORMATS = ("aws_region", "s3_bucket", "hostname")
KEY_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
ALL = "*"

# Region names as AWS publishes them (partitions aws, aws-cn, aws-us-gov). A typo such as
# ``ap-northeast-9`` would otherwise only fail at the first API call, mid-deploy.
AWS_REGIONS = frozenset(
    {
        "af-south-1",
        "ap-east-1",
        "ap-east-2",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-6",
        "ap-southeast-7",
        "ca-central-1",
        "ca-west-1",
        "cn-north-1",
        "cn-northwest-1",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "mx-central-1",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-gov-east-1",
        "us-gov-west-1",
        "us-west-1",
        "us-west-2",
    }
)

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_INT = re.compile(r"^[+-]?[0-9]+$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show(text: str, secret: bool) -> str:
    """A value for a message: never a secret's, and never a long one."""
    if secret:
        return "the value"
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _bucket_problem(name: str) -> str | None:
    """S3 bucket naming rules (general purpose buckets)."""
    if not 3 <= len(name) <= 63:
        return "must be 3 to 63 characters long"
    if not _BUCKET.match(name):
        return (
            "may contain only lowercase letters, digits, '.' and '-', and must begin and end "
            "with a letter or digit"
        )
    if ".." in name:
        return "must not contain two adjacent periods"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return "must not be formatted as an IP address"
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(prefix):
            return f"must not begin with {prefix!r}"
    for suffix in ("-s3alias", "--ol-s3", ".mrap", "--x-s3"):
        if name.endswith(suffix):
            return f"must not end with {suffix!r}"
    return None


def _hostname_ok(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return True
    if not name or len(name) > 253:
        return False
    return all(_HOST_LABEL.match(label) for label in name.removesuffix(".").split("."))


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldSpec:
    """One setting: its type and every rule it must satisfy."""

    key: str
    type: str = "str"
    description: str = ""
    default: str | None = None
    required_in: frozenset[str] = frozenset()
    allowed: tuple[str, ...] = ()
    pattern: str | None = None
    min: int | None = None
    max: int | None = None
    format: str | None = None
    secret: bool = False
    literal_allowed_in: frozenset[str] = frozenset({"development"})
    from_env: str | None = None
    equals_environment: bool = False
    platform_managed: bool = False
    # Where ``default`` was set: a schema file, or None for the built-in schema.
    default_origin: str | None = None

    def required(self, environment: str) -> bool:
        return ALL in self.required_in or environment in self.required_in

    def literal_allowed(self, environment: str) -> bool:
        return ALL in self.literal_allowed_in or environment in self.literal_allowed_in

    def default_for(self, environment: str) -> str | None:
        if self.equals_environment and self.default is None:
            return environment
        return self.default

    def check(self, text: str, environment: str) -> tuple[str | None, list[str]]:
        """``(canonical text, [])`` or ``(None, problems)``. Problems name the fix and never
        contain the value of a secret."""
        shown = _show(text, self.secret)
        value = text
        if self.type == "int":
            if not _INT.match(text.strip()):
                example = _INT_EXAMPLES.get(self.key, self.default or self.min or 3)
                return None, [
                    f"expected a whole number, got {shown}; write e.g. {self.key}: {example}"
                ]
            number = int(text.strip())
            value = str(number)
            if self.min is not None and number < self.min:
                return None, [f"{shown} is below the minimum {self.min}"]
            if self.max is not None and number > self.max:
                return None, [f"{shown} is above the maximum {self.max}"]
        elif self.type == "bool":
            low = text.strip().lower()
            if low in _TRUE:
                value = "true"
            elif low in _FALSE:
                value = "false"
            else:
                return None, [f"expected true or false, got {shown}"]
        problems: list[str] = []
        if self.allowed and value not in self.allowed:
            problems.append(
                f"{shown} is not allowed; use one of: {', '.join(self.allowed)}"
                + ("" if self.secret else did_you_mean(value, self.allowed))
            )
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            problems.append(f"{shown} does not match the pattern {self.pattern!r}")
        if self.format == "aws_region" and value not in AWS_REGIONS:
            problems.append(
                f"{shown} is not an AWS region{did_you_mean(value, sorted(AWS_REGIONS))}; "
                "use a region name such as ap-northeast-1"
            )
        elif self.format == "s3_bucket":
            why = _bucket_problem(value)
            if why:
                problems.append(f"{shown} is not a valid S3 bucket name: it {why}")
        elif self.format == "hostname" and not _hostname_ok(value):
            problems.append(f"{shown} is not a host name or IP address, e.g. db.internal")
        if self.equals_environment and value != environment:
            problems.append(
                f"{shown} must equal the environment's name; write {self.key}: {environment}"
            )
        return (None, problems) if problems else (value, [])


#: The example a "not a whole number" message shows, per built-in key (PORT is not 5432).
_INT_EXAMPLES = {"PORT": "3000", "DB_PORT": "5432", "REDIS_PORT": "6379"}


@dataclass(frozen=True, slots=True)
class AppSchema:
    """Every known setting, by key, and the file it was read from (``None``: built in)."""

    fields: Mapping[str, FieldSpec]
    file: str | None = None
    extends_default: bool = field(default=True)

    def get(self, key: str) -> FieldSpec | None:
        return self.fields.get(key)


DEFAULT_SCHEMA = AppSchema(
    {
        spec.key: spec
        for spec in (
            # CFG-2: the platform gives every replica its own PORT, so a deploy never forces one.
            FieldSpec(
                key="PORT", default="3000", platform_managed=True, type="int", min=1, max=65535
            ),
            FieldSpec(
                key="NODE_ENV",
                allowed=("development", "staging", "production"),
                equals_environment=True,
            ),
            FieldSpec(key="APP_NAME", required_in=frozenset({ALL})),
            # CFG-3: mandatory in production; the password a secret reference there.
            FieldSpec(key="DB_HOST", format="hostname", required_in=frozenset({"production"})),
            FieldSpec(
                key="DB_PORT", required_in=frozenset({"production"}), type="int", min=1, max=65535
            ),
            FieldSpec(key="DB_NAME", required_in=frozenset({"production"})),
            FieldSpec(key="DB_USER", required_in=frozenset({"production"})),
            FieldSpec(key="DB_PASSWORD", secret=True, required_in=frozenset({"production"})),
            # CFG-4
            FieldSpec(key="REDIS_HOST", format="hostname"),
            FieldSpec(key="REDIS_PORT", type="int", min=1, max=65535),
            # CFG-5
            FieldSpec(key="AWS_REGION", default="ap-northeast-1", format="aws_region"),
            FieldSpec(key="S3_BUCKET", format="s3_bucket"),
        )
    }
)

_ATTRS = (
    "type",
    "description",
    "default",
    "required_in",
    "allowed",
    "pattern",
    "min",
    "max",
    "format",
    "secret",
    "literal_allowed_in",
    "from_env",
    "equals_environment",
    "platform_managed",
)


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def _names(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def parse_schema(raw: Any, file: str) -> tuple[AppSchema, list[ConfigIssue]]:
    """Build a schema from the parsed YAML of ``schema.yaml``; every problem is collected."""
    issues: list[ConfigIssue] = []

    def add(path: str, message: str) -> None:
        issues.append(ConfigIssue(path=path, message=message, file=file))

    if raw is None:
        return DEFAULT_SCHEMA, issues
    if not isinstance(raw, dict):
        add("(root)", "the schema must be a mapping with 'keys' (and optionally 'extends')")
        return DEFAULT_SCHEMA, issues
    for top in raw:
        if top not in ("extends", "keys"):
            add(str(top), f"unknown key {top!r}{did_you_mean(str(top), ['extends', 'keys'])}")
    extends = raw.get("extends", "default")
    if extends not in ("default", "none"):
        add("extends", "use 'default' (the built-in schema) or 'none' (start empty)")
        extends = "default"
    fields: dict[str, FieldSpec] = dict(DEFAULT_SCHEMA.fields) if extends == "default" else {}
    keys = raw.get("keys") or {}
    if not isinstance(keys, dict):
        add("keys", "must be a mapping of KEY: {type: ..., ...}")
        keys = {}
    for key, attrs in keys.items():
        where = f"keys.{key}"
        if not isinstance(key, str) or not KEY_RE.match(key):
            add(where, "a key is UPPER_SNAKE_CASE, e.g. LOG_LEVEL")
            continue
        if attrs is None:
            attrs = {}
        if not isinstance(attrs, dict):
            add(where, "must be a mapping of attributes, e.g. {type: int, default: 3000}")
            continue
        spec, found = _parse_field(key, attrs, fields.get(key), where, file)
        issues.extend(found)
        if spec is not None:
            fields[key] = spec
    return AppSchema(fields, file=file, extends_default=extends == "default"), issues


def _parse_field(
    key: str, attrs: dict[Any, Any], base: FieldSpec | None, where: str, file: str
) -> tuple[FieldSpec | None, list[ConfigIssue]]:
    issues: list[ConfigIssue] = []

    def add(attr: str, message: str) -> None:
        issues.append(ConfigIssue(path=f"{where}.{attr}", message=message, file=file))

    changes: dict[str, Any] = {}
    for attr, value in attrs.items():
        name = str(attr)
        if name not in _ATTRS:
            add(name, f"unknown attribute {name!r}{did_you_mean(name, _ATTRS)}")
        elif name == "type":
            if value not in TYPES:
                add(name, f"use one of: {', '.join(TYPES)}")
            else:
                changes[name] = value
        elif name == "format":
            if value is not None and value not in FORMATS:
                add(name, f"use one of: {', '.join(FORMATS)}")
            else:
                changes[name] = value
        elif name in ("description", "pattern"):
            if value is not None and not isinstance(value, str):
                add(name, "must be text")
            elif name == "pattern" and value is not None:
                try:
                    re.compile(value)
                except re.error as exc:
                    add(name, f"not a valid regular expression: {exc}")
                else:
                    changes[name] = value
            else:
                changes[name] = value or ""
        elif name == "default":
            text = None if value is None else _scalar_text(value)
            if value is not None and text is None:
                add(name, "must be a single value (text, number or true/false)")
            else:
                changes[name] = text
        elif name in ("required_in", "literal_allowed_in"):
            names = _names(value)
            if names is None:
                add(name, 'must be a list of environment names, or ["*"] for all')
            else:
                changes[name] = frozenset(names)
        elif name == "allowed":
            if not isinstance(value, list) or any(_scalar_text(v) is None for v in value):
                add(name, "must be a list of values, e.g. [debug, info]")
            else:
                changes[name] = tuple(str(_scalar_text(v)) for v in value)
        elif name in ("min", "max"):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                add(name, "must be a whole number")
            else:
                changes[name] = value
        elif name in ("secret", "equals_environment", "platform_managed"):
            if not isinstance(value, bool):
                add(name, "must be true or false")
            else:
                changes[name] = value
        elif name == "from_env":
            if value is True:
                changes[name] = key
            elif value is False or value is None:
                changes[name] = None
            elif isinstance(value, str) and KEY_RE.match(value):
                changes[name] = value
            else:
                add(name, "use true (the same name) or an environment variable name")
    if issues:
        return None, issues
    if "default" in changes:
        changes["default_origin"] = file
    spec = dataclasses.replace(base or FieldSpec(key=key), **changes)
    if spec.type != "int" and (spec.min is not None or spec.max is not None):
        issues.append(ConfigIssue(path=f"{where}.min", message="min/max need type: int", file=file))
    if spec.default is not None:
        _, problems = spec.check(spec.default, spec.default)
        # equals_environment cannot be judged without an environment
        problems = [p for p in problems if "environment's name" not in p]
        for problem in problems:
            issues.append(ConfigIssue(path=f"{where}.default", message=problem, file=file))
    return (None if issues else spec), issues
