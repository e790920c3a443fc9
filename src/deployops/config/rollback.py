"""The ``rollback:`` section of ``deployops.yaml``: the automatic-rollback policy (RB-1).

It maps onto the domain's :class:`~deployops.domain.policy.RollbackPolicy`. Every rule of the
guide's table is there by default; a section only names what it changes. It may sit at the top
level (every service) and under a service (that service; its keys win, rule by rule)::

    rollback:
      period: 60s              # the period of every rule unless a rule sets its own
      min_requests: 20         # requests per period before error rate or latency is judged
      max_replicas: 10         # scale-out never goes above this (IAC-3)
      scale_out_step: 2        # replicas added per scale-out
      scale_out_cooldown: 300s # IAC-5
      watch_after_switch: retention  # keep judging the live version after the stability
                               # window: retention (until the old target group is deleted,
                               # 24 h), a duration, or 0 (off)
      insufficient_data:       # a rule without enough data is never a silent pass
        action: synthetic      # synthetic | extend | fail | accept
        max_extension: 5m      # extend: observe at most this much longer for data
        synthetic_path: /      # synthetic: what the bounded requests ask for
        synthetic_max_requests: 600
      rules:
        error-rate: {threshold: 5, window: 5m}
        p99-latency: {threshold: 1000, window: 3m, escalate_after: 10m}
        memory: {threshold: 90, window: 2m, scale_out_grace: 5m}
        cpu: {enabled: false}
        queue-depth:           # a rule of your own names its metric and statistic
          metric: DatabaseConnections
          statistic: Average
          threshold: 80
          window: 1m
          action: notify
      analysis:                # the canary comparison: new version against the old
        confidence: 0.98
        pass_score: 95
        marginal_score: 75
        on_marginal: hold      # hold: wait for `deployops decide`; continue
        decision_timeout: 30m  # a held rollout rolls back after this
        metrics:
          error_rate: {min_effect_absolute: 1}     # percentage points
          latency: {min_effect_percent: 10}
      measurements_retention: 90d

Impossible windows and thresholds are reported with their path through
:func:`~deployops.domain.rules.validate_rule`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deployops.config.durations import Duration
from deployops.domain.judge import (
    Direction,
    JudgeMetric,
    JudgePolicy,
    MetricPolicy,
    default_metric_policies,
    validate_judge_policy,
)
from deployops.domain.model import MetricName, Statistic
from deployops.domain.policy import (
    RollbackPolicy,
    RollbackRule,
    RuleAction,
    default_rollback_rules,
    validate_policy,
)
from deployops.domain.rules import Comparison, MissingData, Rule

__all__ = [
    "AnalysisMetricConfig",
    "AnalysisSettings",
    "InsufficientDataSettings",
    "PolicyFile",
    "RollbackRuleConfig",
    "RollbackSettings",
    "effective_rollback",
    "file_path",
    "load_policy_file",
    "rollback_issues",
    "rollback_warnings",
]

#: How long the deployment engine keeps observing past the stability window while a breach it
#: has seen builds up (an escalation, a scale-out being judged): ``MAX_OBSERVE_HOLD_S``.
OBSERVE_HOLD_LIMIT_S = 3600.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RollbackRuleConfig(_Model):
    """One rule: a change to a default rule, or (with ``metric``) a rule of your own."""

    enabled: bool = True
    metric: MetricName | None = None
    statistic: Statistic | None = None
    comparison: Literal[">", ">=", "<", "<="] | None = None
    threshold: float | None = None
    period: Duration | None = None
    window: Duration | None = None  # evaluation_periods = window / period
    evaluation_periods: int | None = None
    datapoints_to_alarm: int | None = None
    breach_duration: Duration | None = None
    escalate_after: Duration | None = None
    missing_data: Literal["missing", "ignore", "breaching", "notBreaching"] | None = None
    min_samples: int | None = None
    max_query_errors: int | None = None
    action: Literal["rollback", "scale_out", "scale_out_then_rollback", "notify"] | None = None
    scale_out_grace: Duration | None = None


class InsufficientDataSettings(_Model):
    """What happens when the observation ends with rules that had too little data to judge.

    ``synthetic`` (default): send bounded requests through the test listener (only the new
    version answers them) and then the production listener, enough for each unjudged rule's
    minimum per period over its window, and judge again; ``extend``: keep observing, at most
    ``max_extension`` longer, until real traffic judges them; ``fail``: roll back at once;
    ``accept``: deploy anyway, the final line saying what was not judged. Whatever the action,
    a rule still unjudged after it fails the deployment (except with ``accept``).
    """

    action: Literal["synthetic", "extend", "fail", "accept"] = "synthetic"
    max_extension: Duration = 300.0
    synthetic_path: str = "/"
    synthetic_max_requests: int = Field(default=600, ge=1, le=100_000)
    synthetic_timeout: Duration = 5.0


class AnalysisMetricConfig(_Model):
    """One metric of the canary comparison; a key left out (or ``null``) keeps that metric's
    default, so the section survives being frozen into a plan and read back.

    ``min_effect_percent`` is relative to the old version (10 = +10 %);
    ``min_effect_absolute`` is in the metric's unit: percentage points for ``error_rate``,
    milliseconds for ``latency`` (mean) and ``latency_spread`` (standard deviation). ``0``
    removes a floor. A change fails only when it reaches every floor set.
    """

    enabled: bool = True
    direction: Literal["increase", "decrease", "either"] | None = None
    min_samples: int | None = Field(default=None, ge=2)
    min_effect_percent: float | None = Field(default=None, ge=0)
    min_effect_absolute: float | None = Field(default=None, ge=0)
    critical: bool | None = None
    weight: float | None = Field(default=None, ge=0)


class AnalysisSettings(_Model):
    """The statistical comparison of the new version with the old one over the same window
    (used while both take traffic, e.g. at each canary step): scipy's tests at ``confidence``,
    scored into pass / marginal / fail. :meth:`judge_policy` is the one place it becomes the
    domain's :class:`~deployops.domain.judge.JudgePolicy`."""

    confidence: float = Field(default=0.98, ge=0.5, lt=1.0)
    pass_score: float = Field(default=95.0, ge=0, le=100)
    marginal_score: float = Field(default=75.0, ge=0, le=100)
    on_marginal: Literal["hold", "continue"] = "hold"
    decision_timeout: Duration = 1800.0
    no_data_passes: bool = False
    metrics: dict[JudgeMetric, AnalysisMetricConfig] = Field(default_factory=dict)

    def merged(self, override: AnalysisSettings | None) -> AnalysisSettings:
        """These settings with ``override``'s set keys on top (metrics merge key by key)."""
        if override is None:
            return self
        base = self.model_dump(exclude_unset=True)
        top = override.model_dump(exclude_unset=True)
        metrics: dict[Any, dict[str, Any]] = {
            k: dict(v) for k, v in base.get("metrics", {}).items()
        }
        for name, fields in top.pop("metrics", {}).items():
            metrics.setdefault(name, {}).update(fields)
        base.update(top)
        base["metrics"] = metrics
        return AnalysisSettings.model_validate(base)

    def judge_policy(self) -> JudgePolicy:
        """The domain policy: the default metrics with this section's changes."""
        out: list[MetricPolicy] = []
        for default in default_metric_policies():
            cfg = self.metrics.get(default.metric)
            if cfg is None:
                out.append(default)
            elif cfg.enabled:
                out.append(_metric_policy(default, cfg))
        return JudgePolicy(
            metrics=tuple(out),
            confidence=self.confidence,
            pass_score=self.pass_score,
            marginal_score=self.marginal_score,
            no_data_passes=self.no_data_passes,
        )


def _metric_policy(default: MetricPolicy, cfg: AnalysisMetricConfig) -> MetricPolicy:
    changes: dict[str, Any] = {}
    if cfg.direction is not None:
        changes["direction"] = Direction(cfg.direction)
    if cfg.min_samples is not None:
        changes["min_samples"] = cfg.min_samples
    if cfg.min_effect_percent is not None:
        pct = cfg.min_effect_percent
        changes["min_effect_relative"] = None if pct == 0 else pct / 100.0
    if cfg.min_effect_absolute is not None:
        value: float | None = cfg.min_effect_absolute
        if value == 0:
            value = None  # no such floor
        elif default.metric is not JudgeMetric.ERROR_RATE:
            value = cfg.min_effect_absolute / 1000.0  # milliseconds in the file, seconds here
        changes["min_effect_absolute"] = value
    if cfg.critical is not None:
        changes["critical"] = cfg.critical
    if cfg.weight is not None:
        changes["weight"] = cfg.weight
    return replace(default, **changes)


class RollbackSettings(_Model):
    """Automatic rollback (RB-1, RB-2). The guide's numbers are the defaults."""

    enabled: bool = True
    period: Duration = 60.0
    min_requests: int = Field(default=20, ge=0)
    max_replicas: int = Field(default=10, ge=1, le=1000)  # IAC-3
    scale_out_step: int = Field(default=2, ge=1, le=100)
    scale_out_cooldown: Duration = 300.0  # IAC-5
    insufficient_data: InsufficientDataSettings = InsufficientDataSettings()
    rules: dict[str, RollbackRuleConfig] = Field(default_factory=dict)
    analysis: AnalysisSettings = AnalysisSettings()
    # Every observed window (and judgement) of a deployment is kept this long, for the
    # incident report and `deployops rules backtest`.
    measurements_retention: Duration = 90 * 86400.0
    # After the stability window the controller keeps judging the live version by these rules
    # (deployops.engine.watch_after): "retention" = until the old target group is deleted
    # (blue_green.target_group_retention, 24 h), a duration, or 0 to switch it off.
    watch_after_switch: Literal["retention"] | Duration = "retention"

    def merged(self, override: RollbackSettings | None) -> RollbackSettings:
        """These settings with ``override``'s explicitly set keys on top (rules merge by name,
        then key by key)."""
        if override is None:
            return self
        base = self.model_dump(exclude_unset=True)
        top = override.model_dump(exclude_unset=True)
        rules: dict[str, dict[str, Any]] = {k: dict(v) for k, v in base.get("rules", {}).items()}
        for name, fields in top.pop("rules", {}).items():
            rules.setdefault(name, {}).update(fields)
        if "insufficient_data" in top:
            below = dict(base.get("insufficient_data", {}))
            below.update(top.pop("insufficient_data"))
            base["insufficient_data"] = below
        if "analysis" in top:
            under = AnalysisSettings.model_validate(base.get("analysis", {}))
            merged = under.merged(AnalysisSettings.model_validate(top.pop("analysis")))
            base["analysis"] = merged.model_dump(exclude_unset=True)
        base.update(top)
        base["rules"] = rules
        return RollbackSettings.model_validate(base)

    def policy(self) -> RollbackPolicy:
        """The domain policy: the guide's rules with this section's changes. Call
        :func:`rollback_issues` first; an invalid section gives an invalid policy."""
        period = max(1, round(self.period))
        defaults = {
            r.name: r
            for r in default_rollback_rules(period_s=period, min_requests=self.min_requests)
        }
        out: list[RollbackRule] = []
        for name, base in defaults.items():
            cfg = self.rules.get(name)
            if cfg is None:
                out.append(base)
            elif cfg.enabled:
                out.append(_apply(base, cfg))
        for name, cfg in self.rules.items():
            if name in defaults or not cfg.enabled:
                continue
            out.append(_apply(_custom(name, cfg, period), cfg))
        return RollbackPolicy(rules=tuple(out))


def _custom(name: str, cfg: RollbackRuleConfig, period: int) -> RollbackRule:
    rule = Rule(
        name=name,
        metric=cfg.metric or MetricName.ERROR_RATE,
        statistic=cfg.statistic or Statistic.AVERAGE,
        comparison=Comparison(cfg.comparison or ">"),
        threshold=cfg.threshold if cfg.threshold is not None else 0.0,
        period_s=period,
        missing_data=MissingData.NOT_BREACHING,
    )
    return RollbackRule(rule=rule, action=RuleAction(cfg.action or "notify"))


def _apply(base: RollbackRule, cfg: RollbackRuleConfig) -> RollbackRule:
    rule = base.rule
    changes: dict[str, Any] = {}
    if cfg.metric is not None:
        changes["metric"] = cfg.metric
    if cfg.statistic is not None:
        changes["statistic"] = cfg.statistic
    if cfg.comparison is not None:
        changes["comparison"] = Comparison(cfg.comparison)
    if cfg.threshold is not None:
        changes["threshold"] = cfg.threshold
    period = round(cfg.period) if cfg.period is not None else rule.period_s
    changes["period_s"] = period
    if cfg.evaluation_periods is not None:
        changes["evaluation_periods"] = cfg.evaluation_periods
    else:
        # Keep the default window in time when only the period changes.
        window = cfg.window if cfg.window is not None else rule.window_s
        changes["evaluation_periods"] = max(1, round(window / period)) if period > 0 else 1
    if cfg.datapoints_to_alarm is not None:
        changes["datapoints_to_alarm"] = cfg.datapoints_to_alarm
    elif rule.datapoints_to_alarm is not None:
        changes["datapoints_to_alarm"] = None  # "for the whole window", whatever its length
    if cfg.breach_duration is not None:
        changes["breach_duration_s"] = cfg.breach_duration
    if cfg.escalate_after is not None:
        changes["escalate_after_s"] = cfg.escalate_after
    if cfg.missing_data is not None:
        changes["missing_data"] = MissingData(cfg.missing_data)
    if cfg.min_samples is not None:
        changes["min_samples"] = cfg.min_samples
    if cfg.max_query_errors is not None:
        changes["max_query_errors"] = cfg.max_query_errors
    new = replace(base, rule=replace(rule, **changes))
    if cfg.action is not None:
        new = replace(new, action=RuleAction(cfg.action))
    if cfg.scale_out_grace is not None:
        new = replace(new, scale_out_grace_s=cfg.scale_out_grace)
    return new


def rollback_issues(
    settings: RollbackSettings, path: str, *, inherited: RollbackSettings | None = None
) -> list[tuple[str, str]]:
    """Every problem of a ``rollback:`` section as ``(path, message)`` pairs. A service's
    section is checked merged onto the top-level one (``inherited``); problems the top level
    already has are reported there only."""
    if inherited is None:
        return _issues(settings, path)
    own = _issues(inherited.merged(settings), path)
    seen = {(p.removeprefix("rollback"), m) for p, m in _issues(inherited, "rollback")}
    return [(p, m) for p, m in own if (p.removeprefix(path), m) not in seen]


def _issues(settings: RollbackSettings, path: str) -> list[tuple[str, str]]:
    issues: list[tuple[str, str]] = []
    if settings.period < 1 or settings.period != round(settings.period):
        issues.append((f"{path}.period", "must be a whole number of seconds, at least 1s"))
    if settings.scale_out_cooldown < 0:
        issues.append((f"{path}.scale_out_cooldown", "must be 0 or more seconds"))
    nodata = settings.insufficient_data
    if nodata.max_extension < 0:
        issues.append((f"{path}.insufficient_data.max_extension", "must be 0 or more seconds"))
    if not nodata.synthetic_path.startswith("/"):
        issues.append(
            (
                f"{path}.insufficient_data.synthetic_path",
                f"must be a path starting with /, e.g. /, not {nodata.synthetic_path!r}",
            )
        )
    if nodata.synthetic_timeout <= 0:
        issues.append(
            (f"{path}.insufficient_data.synthetic_timeout", "must be more than 0 seconds")
        )
    if settings.measurements_retention < 86400:
        issues.append(
            (
                f"{path}.measurements_retention",
                "must be at least 1d: the backtest replays the measurements kept this long",
            )
        )
    issues.extend(_analysis_issues(settings.analysis, f"{path}.analysis"))
    defaults = {r.name for r in default_rollback_rules()}
    broken: set[str] = set()
    for name, cfg in settings.rules.items():
        where = f"{path}.rules.{name}"
        before = len(issues)
        if cfg.period is not None and (cfg.period < 1 or cfg.period != round(cfg.period)):
            issues.append((f"{where}.period", "must be a whole number of seconds, at least 1s"))
        if cfg.window is not None and cfg.evaluation_periods is not None:
            issues.append(
                (
                    f"{where}.window",
                    "set window or evaluation_periods, not both (window = periods × period)",
                )
            )
        period = cfg.period if cfg.period is not None else settings.period
        if cfg.window is not None and period >= 1 and cfg.window < period:
            issues.append(
                (
                    f"{where}.window",
                    f"shorter than the period ({period:g}s): lengthen the window or shorten "
                    "the period",
                )
            )
        if name not in defaults and cfg.enabled:
            for key in ("metric", "threshold"):
                if getattr(cfg, key) is None:
                    issues.append(
                        (
                            f"{where}.{key}",
                            f"a rule of your own needs {key} (default rules are: "
                            f"{', '.join(sorted(defaults))})",
                        )
                    )
        if len(issues) > before:
            broken.add(name)
    if any(p == f"{path}.period" for p, _ in issues):
        return issues
    usable = settings.model_copy(
        update={"rules": {k: v for k, v in settings.rules.items() if k not in broken}}
    )
    for p, message in validate_policy(usable.policy(), f"{path}.rules"):
        issues.append((file_path(p), message))
    return issues


def _analysis_issues(analysis: AnalysisSettings, path: str) -> list[tuple[str, str]]:
    issues: list[tuple[str, str]] = []
    if analysis.decision_timeout < 1:
        issues.append((f"{path}.decision_timeout", "must be at least 1s"))
    for p, message in validate_judge_policy(analysis.judge_policy(), path):
        if p == f"{path}.marginal_score":
            message = (
                f"must not be above pass_score ({analysis.pass_score:g}): lower it or raise "
                "pass_score"
            )
        issues.append((p, message))
    return issues


_FIELD_NAMES = {
    "period_s": "period",
    "breach_duration_s": "breach_duration",
    "escalate_after_s": "escalate_after",
    "scale_out_grace_s": "scale_out_grace",
}


def file_path(path: str) -> str:
    """A domain issue path with the file's key names (``...period_s`` -> ``...period``)."""
    head, _, last = path.rpartition(".")
    name = _FIELD_NAMES.get(last)
    return f"{head}.{name}" if name and head else path


def rollback_warnings(project: Any) -> list[tuple[str, str]]:
    """Rules that can never act inside a service's observation, as ``(path, message)``.

    The observation lasts the stability window; once a rule has seen a breaching period it is
    extended while the breach builds up, up to :data:`OBSERVE_HOLD_LIMIT_S` more. So a rule
    never acts when its period is longer than the window (no breaching period is seen in time)
    or when the breach it needs (window, breach duration, escalation, scale-out grace) is longer
    than the window and the extension together. ``project`` is a ``ProjectConfig`` (not
    imported: this module and ``project`` do not import each other)."""
    out: list[tuple[str, str]] = []
    for name, svc in project.services.items():
        settings = effective_rollback(project, name)
        if not settings.enabled or rollback_issues(settings, "rollback"):
            continue
        window = svc.blue_green.stability_window
        where = f"services.{name}.rollback.rules"
        for rr in settings.policy().rules:
            rule = rr.rule
            needed = max(rule.window_s, rule.breach_duration_s, rule.escalate_after_s or 0.0)
            if rr.action is RuleAction.SCALE_OUT_THEN_ROLLBACK:
                needed = max(needed, rule.window_s + rr.scale_out_grace_s)
            if rule.period_s > window:
                out.append(
                    (
                        f"{where}.{rr.name}.period",
                        f"{rr.name} judges periods of {rule.period_s}s, longer than "
                        f"services.{name}.blue_green.stability_window ({window:g}s): no period "
                        "ends while the new version is observed, so it never acts; shorten "
                        "the period or lengthen the stability window",
                    )
                )
            elif needed > window + OBSERVE_HOLD_LIMIT_S:
                out.append(
                    (
                        f"{where}.{rr.name}",
                        f"{rr.name} needs {needed:g}s of breach before it acts, longer than the "
                        f"stability window ({window:g}s) plus the longest extension of an "
                        f"observation ({OBSERVE_HOLD_LIMIT_S:g}s): it never acts; shorten its "
                        "window or escalation",
                    )
                )
    return out


class _ServiceRollback(Protocol):
    @property
    def rollback(self) -> RollbackSettings | None: ...


class _ProjectRollback(Protocol):
    """What :func:`effective_rollback` reads of a ``ProjectConfig`` (named structurally, so
    this module and ``project`` do not import each other)."""

    @property
    def rollback(self) -> RollbackSettings | None: ...

    def service(self, name: str) -> _ServiceRollback: ...


def effective_rollback(project: _ProjectRollback, service: str) -> RollbackSettings:
    """The rollback settings of ``service``: defaults, the top-level section, the service's."""
    base = project.rollback or RollbackSettings()
    return base.merged(project.service(service).rollback)


@dataclass(frozen=True)
class PolicyFile:
    """A changed policy to backtest: a ``rollback:`` section (as in ``deployops.yaml``) and
    services' own ``rollback:`` sections under ``services: NAME:``."""

    rollback: RollbackSettings
    services: dict[str, RollbackSettings] = field(default_factory=dict)

    def settings_for(self, service: str) -> RollbackSettings:
        """The service's settings under this policy (its own section on top)."""
        return self.rollback.merged(self.services.get(service))


def load_policy_file(path: Path) -> PolicyFile:
    """Read and validate a policy file: a YAML mapping with a ``rollback:`` section (a whole
    ``deployops.yaml`` works too) or the section's keys at the top. Every problem is a
    ``ConfigError`` naming the file and the key's path (exit 2)."""
    import yaml

    from deployops.errors import ConfigError, ConfigIssue

    file = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot read the policy file: {exc.strerror or exc}",
            path="--policy",
            file=file,
            hint="pass a readable YAML file with a rollback: section, e.g. --policy stricter.yaml",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"not valid YAML: {getattr(exc, 'problem', None) or exc}", path="(root)", file=file
        ) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            "the policy file must be a mapping with a rollback: section",
            path="(root)",
            file=file,
            hint="write e.g. `rollback: {rules: {error-rate: {threshold: 2}}}`",
        )
    whole = "rollback" in raw or "services" in raw
    section = (raw.get("rollback") or {}) if whole else raw
    prefix = "rollback" if whole else ""
    issues: list[ConfigIssue] = []

    def parse(data: Any, where: str) -> RollbackSettings | None:
        try:
            return RollbackSettings.model_validate(data or {})
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                key = ".".join(p for p in (where, loc) if p)
                msg = str(err["msg"]).removeprefix("Value error, ")
                if err["type"] == "extra_forbidden":
                    msg = "unknown key"
                issues.append(ConfigIssue(path=key or "(root)", message=msg, file=file))
            return None

    top = parse(section, prefix)
    services: dict[str, RollbackSettings] = {}
    for name, svc in (raw.get("services") or {}).items() if whole else ():
        if not isinstance(svc, dict):
            issues.append(
                ConfigIssue(path=f"services.{name}", message="must be a mapping", file=file)
            )
            continue
        own = parse(svc.get("rollback"), f"services.{name}.rollback")
        if own is not None:
            services[str(name)] = own
    if top is not None:
        for p, message in rollback_issues(top, prefix or "rollback"):
            issues.append(
                ConfigIssue(
                    path=p if prefix else p.removeprefix("rollback."), message=message, file=file
                )
            )
        for name, own in services.items():
            for p, message in rollback_issues(own, f"services.{name}.rollback", inherited=top):
                issues.append(ConfigIssue(path=p, message=message, file=file))
    if issues or top is None:
        raise ConfigError(
            issues,
            hint="the policy file takes the keys of deployops.yaml's rollback: section "
            "(docs/configuration.md)",
        )
    return PolicyFile(rollback=top, services=services)
