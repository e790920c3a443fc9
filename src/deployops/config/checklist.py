"""The ``checklist:`` section of ``deployops.yaml``: the deployment checklist as gates
(CHK-1..CHK-3).

Without the section there is no gate (a project opts in). With it, every item of the guide's
chapter 6 is there by default (``domain/checklist.py`` lists them); the section names only what
it changes. Each stage is a mapping of item name to settings::

    checklist:
      pre:                                   # before anything changes (CHK-1)
        unit-tests: {file: reports/junit.xml, exclude_suites: [e2e]}
        e2e-tests: {file: reports/junit.xml, suite: e2e}
        coverage: {file: reports/coverage.xml, threshold: 80, package: shop_api}
        lint: {file: reports/ruff.json}      # ruff or flake8 JSON
        security-scan:                       # SARIF, pip-audit, trivy or checkov JSON
          files: [reports/pip-audit.json, reports/checkov.json]
          max_critical: 0
          max_high: 0
        code-review:
          source: github                     # file | git | github
          minimum: 2
          github: {repo: acme/shop-api, pull: 42, token: secret://github-token}
        maintenance-window: {required: true} # optional by default ("where needed")
        load-test: {kind: manual, title: load test signed off}   # an item of your own
      during:                                # while deploying (CHK-2)
        error-rate: {threshold: 1, on_failure: hold, hold_timeout: 10m}
        cpu: {on_failure: warn}
      post:                                  # after the switch (CHK-3)
        smoke-tests: {paths: [/health, /api/orders]}
        external-apis: {urls: [https://payments.example.com/health]}
        error-logs: {duration: 15m}
        performance: {duration: 30m}

``on_failure`` is ``block`` or ``warn`` before a deploy; ``rollback`` (default), ``hold`` or
``warn`` during it; ``warn`` after it (the release is live: a failed check is reported in the
completion report and notified).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from deployops.config.durations import Duration
from deployops.domain.checklist import (
    DEFAULT_ITEMS,
    STAGE_ACTIONS,
    Check,
    ItemKind,
    OnFailure,
    Stage,
)

__all__ = [
    "ChecklistItemConfig",
    "ChecklistSettings",
    "GithubApprovals",
    "ResolvedItem",
    "checklist_issues",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GithubApprovals(_Model):
    """Approvals read from a GitHub pull request (the token is a secret reference)."""

    repo: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    pull: int = Field(..., ge=1)
    token: str = "secret://github-token"  # noqa: S105 - a reference, resolved late
    api_url: str = "https://api.github.com"


class ChecklistItemConfig(_Model):
    """One item's settings. Which keys apply depends on the item (see the module docs)."""

    enabled: bool = True
    kind: Literal["automated", "manual"] | None = None
    title: str | None = None
    required: bool | None = None
    on_failure: Literal["block", "rollback", "hold", "warn"] | None = None
    # artefacts (pre)
    file: str | None = None
    files: tuple[str, ...] | None = None
    suite: str | None = None
    exclude_suites: tuple[str, ...] | None = None
    threshold: float | None = None
    metric: Literal["total", "line", "branch"] | None = None
    package: str | None = None
    max_critical: int | None = Field(default=None, ge=0)
    max_high: int | None = Field(default=None, ge=0)
    unknown_severity: Literal["critical", "high", "medium", "low", "ignore"] | None = None
    # approvals (pre)
    source: Literal["file", "git", "github"] | None = None
    minimum: int | None = Field(default=None, ge=1, le=20)
    git_ref: str | None = None
    github: GithubApprovals | None = None
    # during
    hold_timeout: Duration | None = None
    # post
    paths: tuple[str, ...] | None = None
    urls: tuple[str, ...] | None = None
    dsn: str | None = None
    duration: Duration | None = None
    patterns: tuple[str, ...] | None = None
    ignore: tuple[str, ...] | None = None


class ChecklistSettings(_Model):
    """The checklist's gates; the guide's items with this section's changes."""

    enabled: bool = True
    pre: dict[str, ChecklistItemConfig] = Field(default_factory=dict)
    during: dict[str, ChecklistItemConfig] = Field(default_factory=dict)
    post: dict[str, ChecklistItemConfig] = Field(default_factory=dict)
    # who may sign manual items once a deployment has ended: nobody (a closed record)
    report_dir: str = ".deployops/reports"

    def section(self, stage: Stage) -> Mapping[str, ChecklistItemConfig]:
        return {Stage.PRE: self.pre, Stage.DURING: self.during, Stage.POST: self.post}[stage]

    def items(self, stage: Stage) -> list[ResolvedItem]:
        """The enabled items of ``stage``, the guide's first (in its order), then your own.
        Call :func:`checklist_issues` first; an invalid section resolves to nonsense."""
        own = self.section(stage)
        out: list[ResolvedItem] = []
        for d in DEFAULT_ITEMS:
            if d.stage is not stage:
                continue
            cfg = own.get(d.name, ChecklistItemConfig())
            if not cfg.enabled:
                continue
            out.append(
                ResolvedItem(
                    name=d.name,
                    stage=stage,
                    kind=d.kind,
                    check=d.check,
                    title=cfg.title or d.title,
                    required=d.required if cfg.required is None else cfg.required,
                    on_failure=OnFailure(cfg.on_failure) if cfg.on_failure else d.on_failure,
                    options=_options(d.name, cfg),
                )
            )
        defaults = {d.name for d in DEFAULT_ITEMS if d.stage is stage}
        for name, cfg in own.items():
            if name in defaults or not cfg.enabled:
                continue
            out.append(
                ResolvedItem(
                    name=name,
                    stage=stage,
                    kind=ItemKind.MANUAL,
                    check=Check.MANUAL,
                    title=cfg.title or name,
                    required=True if cfg.required is None else cfg.required,
                    on_failure=OnFailure(cfg.on_failure)
                    if cfg.on_failure
                    else STAGE_ACTIONS[stage][0],
                    options={},
                )
            )
        return out

    def item(self, name: str) -> ResolvedItem | None:
        for stage in Stage:
            for it in self.items(stage):
                if it.name == name:
                    return it
        return None

    def all_names(self) -> list[str]:
        return [it.name for stage in Stage for it in self.items(stage)]


@dataclass(frozen=True, slots=True)
class ResolvedItem:
    """An item with every setting it needs (frozen into a deployment when it starts)."""

    name: str
    stage: Stage
    kind: ItemKind
    check: Check
    title: str
    required: bool
    on_failure: OnFailure
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stage": self.stage.value,
            "kind": self.kind.value,
            "check": self.check.value,
            "title": self.title,
            "required": self.required,
            "on_failure": self.on_failure.value,
            "options": dict(self.options),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResolvedItem:
        return cls(
            name=data["name"],
            stage=Stage(data["stage"]),
            kind=ItemKind(data["kind"]),
            check=Check(data["check"]),
            title=data.get("title", ""),
            required=bool(data.get("required", True)),
            on_failure=OnFailure(data["on_failure"]),
            options=dict(data.get("options", {})),
        )


# Defaults per item: where a CI usually writes its reports (relative to deployops.yaml).
_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "unit-tests": {"file": "reports/junit.xml", "suite": None, "exclude_suites": ["e2e"]},
    "e2e-tests": {"file": "reports/e2e-junit.xml", "suite": None, "exclude_suites": []},
    "coverage": {
        "file": "reports/coverage.xml",
        "threshold": 80.0,
        "metric": "total",
        "package": None,
    },
    "lint": {"file": "reports/lint.json"},
    "security-scan": {
        "files": ["reports/security/*.json", "reports/security/*.sarif"],
        "max_critical": 0,
        "max_high": 0,
        "unknown_severity": "high",
    },
    "code-review": {
        "source": "file",
        "minimum": 2,
        "file": "reports/approvals.json",
        "git_ref": "HEAD",
        "github": None,
    },
    # CHK-2: the guide's limits, judged on the same measurements as the rollback rules
    "error-rate": {"threshold": 1.0, "hold_timeout": 600.0},
    "p99-latency": {"threshold": 500.0, "hold_timeout": 600.0},
    "cpu": {"threshold": 70.0, "hold_timeout": 600.0},
    "memory": {"threshold": 80.0, "hold_timeout": 600.0},
    "health-checks": {"threshold": 100.0, "hold_timeout": 600.0},  # healthy targets, %
    # CHK-3
    "smoke-tests": {"paths": None},  # None: the service's blue_green.smoke_checks
    "database": {"dsn": None},  # None: environments.<env>.local.database_dsn
    "external-apis": {"urls": []},
    "error-logs": {
        "duration": 900.0,
        "threshold": 0.0,  # 5xx answers allowed in the window
        "patterns": ["ERROR", "CRITICAL", "Traceback"],
        # a client that hung up mid-answer is not the service failing
        "ignore": ["ConnectionResetError", "BrokenPipeError"],
    },
    "performance": {"duration": 1800.0},
}

# The keys each item reads; any other key is a mistake worth naming.
_COMMON = {"enabled", "kind", "title", "required", "on_failure"}


def _allowed(name: str) -> set[str]:
    return _COMMON | set(_DEFAULT_OPTIONS.get(name, {}))


def _options(name: str, cfg: ChecklistItemConfig) -> dict[str, Any]:
    out = dict(_DEFAULT_OPTIONS.get(name, {}))
    for key in list(out):
        value = getattr(cfg, key, None)
        if value is None:
            continue
        if isinstance(value, BaseModel):
            value = value.model_dump()
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def checklist_issues(settings: ChecklistSettings, path: str = "checklist") -> list[tuple[str, str]]:
    """Every problem of a ``checklist:`` section as ``(path, message)`` pairs: unknown items
    (with a suggestion), keys an item does not read, actions its stage does not allow."""
    issues: list[tuple[str, str]] = []
    for stage in Stage:
        defaults = [d.name for d in DEFAULT_ITEMS if d.stage is stage]
        others = [d.name for d in DEFAULT_ITEMS if d.stage is not stage]
        for name, cfg in settings.section(stage).items():
            where = f"{path}.{stage.value}.{name}"
            set_keys = set(cfg.model_dump(exclude_unset=True))
            if name not in defaults:
                if cfg.kind != "manual":
                    close = difflib.get_close_matches(name, defaults, n=1)
                    if close:
                        hint = f" (did you mean {close[0]!r}?)"
                    elif name in others:
                        hint = " (it belongs to another stage)"
                    else:
                        hint = ""
                    issues.append(
                        (
                            where,
                            f"unknown {stage.value} item {name!r}{hint}; the {stage.value} "
                            f"items are {', '.join(defaults)}; an item of your own is "
                            "signed off by a person: give it kind: manual and a title",
                        )
                    )
                    continue
                extra = set_keys - _COMMON
                if extra:
                    issues.append(
                        (
                            f"{where}.{sorted(extra)[0]}",
                            "an item of your own is manual and takes only "
                            + ", ".join(sorted(_COMMON)),
                        )
                    )
            else:
                extra = set_keys - _allowed(name)
                for key in sorted(extra):
                    ok = sorted(_allowed(name) - {"kind"})
                    issues.append(
                        (f"{where}.{key}", f"{name} does not read {key}; it reads " + ", ".join(ok))
                    )
                if "kind" in set_keys:
                    issues.append((f"{where}.kind", "only an item of your own sets kind"))
            if cfg.on_failure is not None:
                allowed = STAGE_ACTIONS[stage]
                if OnFailure(cfg.on_failure) not in allowed:
                    issues.append(
                        (
                            f"{where}.on_failure",
                            f"{cfg.on_failure!r} is not possible {_WHEN[stage]}; use "
                            + " or ".join(a.value for a in allowed),
                        )
                    )
            if cfg.threshold is not None and cfg.threshold < 0:
                issues.append((f"{where}.threshold", "must be 0 or more"))
            if cfg.source == "github" and cfg.github is None:
                issues.append(
                    (
                        f"{where}.github",
                        "source: github needs github: {repo: OWNER/NAME, pull: NUMBER}",
                    )
                )
            if cfg.hold_timeout is not None and cfg.hold_timeout <= 0:
                issues.append((f"{where}.hold_timeout", "must be more than 0 seconds"))
            for url in cfg.urls or ():
                if not url.startswith(("http://", "https://")):
                    issues.append((f"{where}.urls", f"{url!r} is not an http(s) URL"))
            for p in cfg.paths or ():
                if not p.startswith("/"):
                    issues.append((f"{where}.paths", f"{p!r} must start with '/'"))
    return issues


_WHEN = {
    Stage.PRE: "before a deploy (nothing to roll back yet)",
    Stage.DURING: "during a deploy",
    Stage.POST: "after a deploy",
}
