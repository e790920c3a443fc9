"""The project file ``deployops.yaml``: schema, discovery and validation.

Validation is two passes (structure, then cross-field) and collects *every* problem as
``file:path: message`` with the fix; :class:`~deployops.errors.ConfigError` carries them all.
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from deployops.config.backups import BackupsConfig
from deployops.config.checklist import ChecklistSettings, checklist_issues
from deployops.config.durations import Duration
from deployops.config.monitoring import AlarmConfig, AutoscalingConfig, monitoring_issues
from deployops.config.notifications import NotificationsConfig, load_notifications
from deployops.config.rollback import RollbackSettings, rollback_issues
from deployops.config.secrets import SecretsConfig, secrets_issues
from deployops.domain.version import Version
from deployops.errors import ConfigError, ConfigIssue, NotFoundError

__all__ = [
    "PROJECT_FILE",
    "BlueGreenSettings",
    "CanarySettings",
    "EnvironmentConfig",
    "HealthCheckConfig",
    "LinearSettings",
    "ProjectConfig",
    "RollingSettings",
    "ServiceConfig",
    "SmokeCheck",
    "find_project_file",
    "load_project",
]

PROJECT_FILE = "deployops.yaml"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthCheckConfig(_Model):
    """DEP-1: the health-check path is ``/health``."""

    path: str = "/health"
    interval: Duration = 2.0
    timeout: Duration = 1.0
    healthy_threshold: int = Field(default=2, ge=1, le=10)
    unhealthy_threshold: int = Field(default=2, ge=1, le=10)

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("a health-check path starts with '/', e.g. /health")
        return v


class SmokeCheck(_Model):
    """A request sent through the test listener before the switch (phase 2)."""

    path: str = "/"
    status: int = Field(default=200, ge=100, le=599)


class BlueGreenSettings(_Model):
    """The guide's numbers are the defaults (DEP-2..DEP-4)."""

    # None: the service's desired_count
    desired_count: int | None = Field(default=None, ge=1, le=100)
    health_timeout: Duration = 60.0  # DEP-2
    stability_window: Duration = 300.0  # DEP-3
    sample_interval: Duration = 10.0
    target_group_retention: Duration = 86400.0  # DEP-4
    smoke_checks: tuple[SmokeCheck, ...] = (SmokeCheck(path="/health"),)
    # CHK-2: error rate < 1 % while observing
    max_error_rate: float = Field(default=1.0, ge=0, le=100)
    teardown_on_failure: bool = True


class RollingSettings(_Model):
    """IAC-4: up to 200 % running, never below 100 % healthy."""

    maximum_percent: int = Field(default=200, ge=100, le=400)
    minimum_healthy_percent: int = Field(default=100, ge=0, le=100)
    health_timeout: Duration = 60.0


class CanarySettings(_Model):
    """A weighted shift in steps: each step's share of requests goes to the new version and
    is judged against the old one before the next step."""

    # percent of requests on the new version, increasing, the last one 100
    steps: tuple[int, ...] = (5, 25, 50, 100)
    bake: Duration = 300.0  # how long each step is observed before the next

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("name at least one step, e.g. [5, 25, 50, 100]")
        if any(not 1 <= p <= 100 for p in v):
            raise ValueError("each step is a percent from 1 to 100")
        if any(b <= a for a, b in itertools.pairwise(v)):
            raise ValueError("steps must increase, e.g. [5, 25, 50, 100]")
        if v[-1] != 100:
            raise ValueError("the last step must be 100 (all requests on the new version)")
        return v


class LinearSettings(_Model):
    """Equal steps of ``step_percent`` until 100 %, each observed for ``bake``."""

    step_percent: int = Field(default=10, ge=1, le=100)
    bake: Duration = 60.0

    @property
    def steps(self) -> tuple[int, ...]:
        out = list(range(self.step_percent, 100, self.step_percent))
        return (*out, 100)


class MigrationMarker(_Model):
    """What a version did to the database (RB-3: a rollback across an irreversible migration
    is refused unless forced with a reason)."""

    irreversible: bool = False
    description: str = ""


class ServiceConfig(_Model):
    port: int = Field(..., ge=1, le=65535, description="production listener port (local)")
    test_port: int | None = Field(default=None, ge=1, le=65535, description="test listener port")
    task_family: str | None = None
    command: tuple[str, ...] = ()
    image: str = ""
    working_dir: str = ""
    environment: dict[str, str] = Field(default_factory=dict)
    desired_count: int = Field(default=4, ge=0, le=100)  # DEP-2
    strategy: Literal["blue-green", "rolling", "canary", "linear"] = "blue-green"
    health_check: HealthCheckConfig = HealthCheckConfig()
    blue_green: BlueGreenSettings = BlueGreenSettings()
    rolling: RollingSettings = RollingSettings()
    canary: CanarySettings = CanarySettings()
    linear: LinearSettings = LinearSettings()
    # version -> environment variables added for that version (the sample service's faults)
    version_environment: dict[str, dict[str, str]] = Field(default_factory=dict)
    # version -> the database migration it ships (RB-3)
    migrations: dict[str, MigrationMarker] = Field(default_factory=dict)
    # RB-1: this service's changes to the automatic-rollback policy (config/rollback.py)
    rollback: RollbackSettings | None = None

    @property
    def listener_test_port(self) -> int:
        return self.test_port or self.port + 1


class LocalPlatform(_Model):
    host: str = "127.0.0.1"
    # MON-1 DatabaseConnections: a libpq DSN of the application's PostgreSQL (no password in
    # the file: use peer/trust auth or PGPASSFILE); unset, the alarm has no data.
    database_dsn: str | None = None
    replica_port_range: tuple[int, int] = (20000, 29999)
    metrics_interval: Duration = 10.0
    metrics_retention: Duration = 7 * 86400.0
    restart_backoff_max: Duration = 30.0
    # how long a stopping replica is drained at HAProxy (no new requests, the open ones
    # finish) before it gets SIGTERM; what is still running then is the replica's own to end
    drain_timeout: Duration = 5.0


class AwsPlatform(_Model):
    region: str = "ap-northeast-1"
    cluster: str = ""
    terraform_outputs: str = ""
    endpoint_url: str = ""
    # docs/aws.md: credentials come from the default chain, a named profile, or an assumed role
    profile: str = ""
    role_arn: str = ""
    # services: one ECS service per colour (the guide); ecs-native: ECS's own BLUE_GREEN
    mode: Literal["services", "ecs-native"] = "services"
    # secret://NAME in a task definition becomes valueFrom = secret_arn_prefix + NAME
    secret_arn_prefix: str = ""


class EnvironmentConfig(_Model):
    platform: Literal["local", "aws"] = "local"
    local: LocalPlatform = LocalPlatform()
    aws: AwsPlatform = AwsPlatform()


class StateConfig(_Model):
    url: str | None = None
    # A PostgreSQL state store that cannot be reached is waited for this long per query
    # before the command fails (a restart or fail-over takes seconds).
    reconnect: Duration = 30.0


class ProjectConfig(_Model):
    project: str
    state: StateConfig = StateConfig()
    environments: dict[str, EnvironmentConfig]
    services: dict[str, ServiceConfig]
    # MON-2: validated by config/notifications.py in the cross-field pass (notification_settings)
    notifications: dict[str, Any] = Field(default_factory=dict)
    # RB-1: the automatic-rollback policy for every service (config/rollback.py)
    rollback: RollbackSettings | None = None
    # MON-1 / IAC-5: config/monitoring.py; absent means the guide's five alarms and 70 % CPU
    alarms: dict[str, AlarmConfig] = Field(default_factory=dict)
    autoscaling: AutoscalingConfig = AutoscalingConfig()
    # DR-1: backup policies and the local database (config/backups.py); absent = the guide's table
    backups: BackupsConfig = BackupsConfig()
    # CHK-1..CHK-3: config/checklist.py; absent means no checklist gates
    checklist: ChecklistSettings | None = None
    # SEC-1..3: config/secrets.py; absent means the four managed secrets at the guide's periods
    secrets: SecretsConfig = SecretsConfig()

    # Not part of the file: where it was read from.
    path: Path = Field(default=Path(PROJECT_FILE), exclude=True)

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def state_dir(self) -> Path:
        return self.root / ".deployops"

    def state_url(self) -> str:
        env = os.environ.get("DEPLOYOPS_DATABASE_URL")
        if env:
            return env
        if self.state.url:
            return self.state.url
        return f"sqlite:///{self.state_dir / 'state.db'}"

    def environment(self, name: str) -> EnvironmentConfig:
        try:
            return self.environments[name]
        except KeyError:
            raise NotFoundError(
                f"unknown environment {name!r}"
                + _did_you_mean(name, self.environments)
                + f"; {self.path.name} defines: {', '.join(self.environments)}",
                path="environments",
                file=str(self.path),
            ) from None

    def service(self, name: str) -> ServiceConfig:
        try:
            return self.services[name]
        except KeyError:
            raise NotFoundError(
                f"unknown service {name!r}"
                + _did_you_mean(name, self.services)
                + f"; {self.path.name} defines: {', '.join(self.services)}",
                path="services",
                file=str(self.path),
            ) from None

    def default_service(self) -> str | None:
        return next(iter(self.services)) if len(self.services) == 1 else None

    def notification_settings(self) -> NotificationsConfig:
        """The ``notifications:`` section, validated (``ConfigError`` listing every problem)."""
        return load_notifications(self.notifications, file=str(self.path))


def _did_you_mean(word: str, options: Any) -> str:
    names = [str(o) for o in options]
    close = difflib.get_close_matches(word, names, n=1)
    if not close and len(word) >= 3:  # abbreviations: prod -> production, stag -> staging
        close = [n for n in names if n.startswith(word)][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


def find_project_file(start: Path | None = None) -> Path:
    """``deployops.yaml`` in ``start`` or the nearest parent."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {PROJECT_FILE} in {here} or any parent folder",
        path=PROJECT_FILE,
        hint="run `deployops init` to write an annotated one, or pass -c PATH",
    )


def load_project(path: Path | None = None) -> ProjectConfig:
    """Read and validate a project file; every problem at once in one ``ConfigError``."""
    file = path or find_project_file()
    if not file.is_file():
        raise ConfigError(
            f"{file} does not exist",
            path=PROJECT_FILE,
            hint="run `deployops init` to write an annotated one, or pass -c PATH",
        )
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            ConfigIssue(
                path=f"byte {exc.start}",
                message="not UTF-8 text; save the file as UTF-8",
                file=str(file),
            )
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            ConfigIssue(path=where, message=f"not valid YAML: {problem}", file=str(file))
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(
            "the file must be a mapping with project, environments and services",
            path="(root)",
            file=str(file),
            hint="run `deployops init` to see an annotated example",
        )
    try:
        cfg = ProjectConfig.model_validate({**raw, "path": file})
    except ValidationError as exc:
        raise ConfigError(_issues(exc, str(file), raw)) from None
    issues = _cross_check(cfg, str(file))
    if issues:
        raise ConfigError(issues)
    return cfg


def _issues(exc: ValidationError, file: str, raw: Any) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        path = ".".join(loc) or "(root)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            parent = raw
            for part in loc[:-1]:
                parent = parent.get(part, {}) if isinstance(parent, dict) else {}
            known = _known_fields(loc[:-1])
            msg = f"unknown key {loc[-1]!r}" + _did_you_mean(loc[-1], known)
            if known:
                msg += f"; allowed: {', '.join(sorted(known))}"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        out.append(ConfigIssue(path=path, message=msg, file=file))
    return out


def _known_fields(loc: list[str]) -> list[str]:
    """Field names allowed at ``loc`` in the schema (for "did you mean")."""
    model: Any = ProjectConfig
    i = 0
    while i < len(loc):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(loc[i])
        if field is None:
            return []
        model, step = _item_model(field.annotation)
        i += step
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [n for n in model.model_fields if n != "path"]
    return []


def _item_model(ann: Any) -> tuple[Any, int]:
    """The model a field's value is checked against, and how many path parts it spans:
    ``dict[str, M]`` and ``tuple[M, ...]`` take a key or an index after the field's name;
    ``M | None`` is ``M``."""
    args = [a for a in getattr(ann, "__args__", ()) if a is not type(None) and a is not Ellipsis]
    origin = getattr(ann, "__origin__", None)
    if origin is dict and len(args) == 2:
        return args[1], 2
    if origin in (tuple, list) and args:
        return args[0], 2
    if origin in (None, Union) and args:  # X | None, Optional[X]
        return _item_model(args[0])
    return ann, 1


def _cross_check(cfg: ProjectConfig, file: str) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []

    def add(path: str, message: str) -> None:
        issues.append(ConfigIssue(path=path, message=message, file=file))

    if not _NAME.match(cfg.project):
        add("project", "use lowercase letters, digits and '-' (e.g. shop-api)")
    if not cfg.environments:
        add("environments", "define at least one environment, e.g. development: {platform: local}")
    if not cfg.services:
        add("services", "define at least one service")
    for name in cfg.environments:
        if not _NAME.match(name):
            add(f"environments.{name}", "environment names are lowercase letters, digits, '-'")
    ports: dict[int, str] = {}
    uses_local = any(e.platform == "local" for e in cfg.environments.values())
    uses_aws = any(e.platform == "aws" for e in cfg.environments.values())
    for name, svc in cfg.services.items():
        where = f"services.{name}"
        if not _NAME.match(name):
            add(where, "service names are lowercase letters, digits and '-'")
        for label, port in (("port", svc.port), ("test_port", svc.listener_test_port)):
            if port in ports:
                add(f"{where}.{label}", f"port {port} is also used by {ports[port]}")
            ports[port] = f"{where}.{label}"
        if uses_local and not svc.command:
            add(f"{where}.command", "the local platform runs a command; set e.g. [python, app.py]")
        if uses_aws and not svc.image:
            add(f"{where}.image", "the aws platform runs an image; set e.g. repo/web:{version}")
        bg = svc.blue_green
        if bg.health_timeout <= 0:
            add(f"{where}.blue_green.health_timeout", "must be more than 0 seconds")
        if bg.sample_interval <= 0:
            add(f"{where}.blue_green.sample_interval", "must be more than 0 seconds")
        elif bg.stability_window and bg.stability_window < bg.sample_interval:
            add(
                f"{where}.blue_green.stability_window",
                f"shorter than sample_interval ({bg.sample_interval:g}s): no sample would be "
                "judged; lengthen the window or shorten the interval",
            )
        if svc.health_check.timeout > svc.health_check.interval:
            add(f"{where}.health_check.timeout", "must not exceed health_check.interval")
        for version in svc.version_environment:
            try:
                Version.parse(version)
            except ValueError as exc:
                add(f"{where}.version_environment.{version}", str(exc))
    try:
        load_notifications(cfg.notifications, file=file)
    except ConfigError as exc:
        issues.extend(exc.issues)
    for path, message in monitoring_issues(cfg.alarms, cfg.autoscaling):
        add(path, message)
    if cfg.checklist is not None:
        for path, message in checklist_issues(cfg.checklist):
            add(path, message)
    platforms = {name: e.platform for name, e in cfg.environments.items()}
    for path, message in secrets_issues(cfg.secrets, platforms):
        add(path, message)
    if cfg.rollback is not None:
        for path, message in rollback_issues(cfg.rollback, "rollback"):
            add(path, message)
    for name, svc in cfg.services.items():
        if svc.rollback is not None:
            top = cfg.rollback or RollbackSettings()
            for path, message in rollback_issues(
                svc.rollback, f"services.{name}.rollback", inherited=top
            ):
                add(path, message)
    return issues
