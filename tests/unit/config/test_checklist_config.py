"""The ``checklist:`` section (CHK-1..CHK-3): the guide's items are the defaults, a section
names only what it changes, and every mistake is reported with its path and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deployops.config.checklist import ChecklistSettings, ResolvedItem
from deployops.config.project import load_project
from deployops.domain.checklist import Check, ItemKind, OnFailure, Stage
from deployops.errors import ConfigError

BASE = {
    "project": "shop",
    "environments": {"staging": {"platform": "local"}},
    "services": {"web": {"port": 18080, "command": ["python", "app.py"]}},
}


def _load(tmp_path: Path, checklist: object) -> ChecklistSettings:
    path = tmp_path / "deployops.yaml"
    path.write_text(yaml.safe_dump({**BASE, "checklist": checklist}))
    cfg = load_project(path).checklist
    assert cfg is not None
    return cfg


def _errors(tmp_path: Path, checklist: object) -> list[str]:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, checklist)
    return [i.render() for i in err.value.issues]


def test_chk_defaults_are_the_guides_items_with_their_actions(tmp_path: Path) -> None:
    cfg = _load(tmp_path, {})
    pre = {i.name: i for i in cfg.items(Stage.PRE)}
    assert list(pre) == [
        "unit-tests", "coverage", "e2e-tests", "lint", "security-scan", "code-review",
        "architecture-review", "security-review", "migration-plan", "rollback-plan",
        "capacity-check", "deployment-notice", "maintenance-window", "on-call",
    ]  # fmt: skip
    assert pre["coverage"].options["threshold"] == 80.0  # CHK-1
    assert pre["security-scan"].options["max_critical"] == 0
    assert pre["security-scan"].options["max_high"] == 0
    assert pre["code-review"].options["minimum"] == 2
    assert pre["unit-tests"].on_failure is OnFailure.BLOCK
    assert pre["rollback-plan"].kind is ItemKind.MANUAL
    assert not pre["architecture-review"].required  # "where needed"
    during = {i.name: i for i in cfg.items(Stage.DURING)}
    assert during["error-rate"].options["threshold"] == 1.0  # CHK-2
    assert during["p99-latency"].options["threshold"] == 500.0
    assert during["cpu"].options["threshold"] == 70.0
    assert during["memory"].options["threshold"] == 80.0
    assert all(i.on_failure is OnFailure.ROLLBACK for i in during.values())
    assert [n for n, i in during.items() if i.check is Check.MILESTONE] == [
        "task-definition-registered", "containers-started", "health-passed", "traffic-switched",
    ]  # fmt: skip
    post = {i.name: i for i in cfg.items(Stage.POST)}
    assert post["error-logs"].options["duration"] == 900.0  # CHK-3: 15 min
    assert post["performance"].options["duration"] == 1800.0  # 30 min
    assert post["smoke-tests"].on_failure is OnFailure.WARN


def test_a_section_changes_items_and_adds_manual_ones(tmp_path: Path) -> None:
    cfg = _load(
        tmp_path,
        {
            "pre": {
                "coverage": {"threshold": 90, "file": "out/cov.xml"},
                "lint": {"enabled": False},
                "maintenance-window": {"required": True},
                "load-test": {"kind": "manual", "title": "load test signed off"},
            },
            "during": {"error-rate": {"on_failure": "hold", "hold_timeout": "2m"}},
            "post": {"error-logs": {"duration": "5m"}},
        },
    )
    pre = {i.name: i for i in cfg.items(Stage.PRE)}
    assert pre["coverage"].options["threshold"] == 90
    assert pre["coverage"].options["file"] == "out/cov.xml"
    assert "lint" not in pre
    assert pre["maintenance-window"].required
    assert pre["load-test"].kind is ItemKind.MANUAL
    assert pre["load-test"].title == "load test signed off"
    err = cfg.item("error-rate")
    assert err is not None
    assert err.on_failure is OnFailure.HOLD
    assert err.options["hold_timeout"] == 120.0
    assert ResolvedItem.from_json(err.to_json()) == err
    assert cfg.item("error-logs").options["duration"] == 300.0  # type: ignore[union-attr]


def test_unknown_items_keys_and_actions_are_named_with_the_fix(tmp_path: Path) -> None:
    errors = _errors(
        tmp_path,
        {
            "pre": {
                "unit-test": {},
                "error-rate": {},
                "coverage": {"paths": ["/x"]},
                "lint": {"on_failure": "rollback"},
            },
            "during": {"cpu": {"on_failure": "block"}},
            "post": {"external-apis": {"urls": ["ftp://x"]}},
        },
    )
    text = "\n".join(errors)
    assert "checklist.pre.unit-test: unknown pre item 'unit-test' (did you mean 'unit-tests'?)" in (
        text
    )
    assert (
        "checklist.pre.error-rate: unknown pre item 'error-rate' (it belongs to another stage)"
        in (text)
    )
    assert "checklist.pre.coverage.paths: coverage does not read paths" in text
    assert "checklist.pre.lint.on_failure: 'rollback' is not possible before a deploy" in text
    assert "checklist.during.cpu.on_failure: 'block' is not possible during a deploy" in text
    assert "checklist.post.external-apis.urls: 'ftp://x' is not an http(s) URL" in text
    assert len(errors) == 6


def test_github_source_needs_its_pull_request(tmp_path: Path) -> None:
    errors = _errors(tmp_path, {"pre": {"code-review": {"source": "github"}}})
    assert any("code-review.github: source: github needs github" in e for e in errors)
    cfg = _load(
        tmp_path,
        {"pre": {"code-review": {"source": "github", "github": {"repo": "a/b", "pull": 3}}}},
    )
    item = cfg.item("code-review")
    assert item is not None
    assert item.options["github"]["token"] == "secret://github-token"


def test_no_section_means_no_gate(tmp_path: Path) -> None:
    path = tmp_path / "deployops.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert load_project(path).checklist is None
