"""`config validate` warns about an automatic-rollback rule that can never act while the new
version is observed (RB-1, DEP-3): its period is longer than the stability window, or the
breach it needs outlasts the window and the longest extension of an observation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from deployops.config.project import load_project
from deployops.config.rollback import OBSERVE_HOLD_LIMIT_S, rollback_warnings
from deployops.engine.observe.watch import MAX_OBSERVE_HOLD_S

DEPLOYOPS = Path(sys.executable).parent / "deployops"


def _project(tmp_path: Path, rollback: dict[str, Any], stability: str = "10s") -> Path:
    doc = {
        "project": "shop-api",
        "environments": {"staging": {"platform": "local"}},
        "services": {
            "web": {
                "port": 18080,
                "command": ["python3", "app.py"],
                "blue_green": {"stability_window": stability},
                "rollback": rollback,
            }
        },
    }
    path = tmp_path / "deployops.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_the_limit_is_the_engines() -> None:
    assert OBSERVE_HOLD_LIMIT_S == MAX_OBSERVE_HOLD_S


def test_rules_that_fit_the_observation_give_no_warning(tmp_path: Path) -> None:
    rules = {"period": "1s", "rules": {"p99-latency": {"window": "3s", "escalate_after": "6s"}}}
    assert rollback_warnings(load_project(_project(tmp_path, rules))) == []


def test_a_period_longer_than_the_stability_window_never_acts(tmp_path: Path) -> None:
    project = load_project(
        _project(tmp_path, {"period": "1s", "rules": {"cpu": {"period": "30s"}}})
    )
    warnings = dict(rollback_warnings(project))
    message = warnings["services.web.rollback.rules.cpu.period"]
    assert "periods of 30s" in message
    assert "stability_window (10s)" in message
    assert "never acts" in message


def test_an_escalation_past_every_extension_never_acts(tmp_path: Path) -> None:
    rules = {"period": "1s", "rules": {"p99-latency": {"window": "3s", "escalate_after": "2h"}}}
    warnings = dict(rollback_warnings(load_project(_project(tmp_path, rules))))
    assert "needs 7200s of breach" in warnings["services.web.rollback.rules.p99-latency"]


def test_config_validate_prints_the_warning_and_still_passes(tmp_path: Path) -> None:
    _project(tmp_path, {"period": "1s", "rules": {"cpu": {"period": "30s"}}})
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.run(
        [str(DEPLOYOPS), "config", "validate", "-e", "staging", "--offline"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning: deployops.yaml:services.web.rollback.rules.cpu.period" in proc.stderr
