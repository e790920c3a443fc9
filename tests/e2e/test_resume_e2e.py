"""A deploy killed (SIGKILL) after its switch, the rollback rules edited in deployops.yaml,
then `deployops resume`: the resumed observation is judged by the rules the deploy started
with (the plan carries them), on the real local platform under load."""

from __future__ import annotations

import json
import signal

import pytest
import yaml

from deployops.drivers.local.load import Load
from tests.e2e.conftest import FAST_RULES, running_project

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BLUE_GREEN = {
    "health_timeout": 20,
    "stability_window": 6,
    "sample_interval": 0.5,
    "smoke_checks": [{"path": "/health", "status": 200}],
}


def test_resumed_deploy_is_judged_by_the_rules_it_started_with() -> None:
    with running_project(blue_green=BLUE_GREEN) as project:
        assert project.cli("deploy", "--version", "1.0.0").returncode == 0
        url = f"http://127.0.0.1:{project.config.services['web'].port}/"
        with Load(url, workers=3, max_seconds=90):
            proc = project.popen("-o", "json", "deploy", "--version", "2.0.0")
            assert proc.stdout is not None
            killed = False
            for line in proc.stdout:
                event = json.loads(line)
                if event["kind"] == "step.succeeded" and event["data"]["step"] == "SwitchListener":
                    proc.send_signal(signal.SIGKILL)
                    killed = True
                    break
            proc.wait(timeout=30)
            assert killed and proc.returncode == -signal.SIGKILL
            assert project.prod_target_group() == "web-green"  # 2.0.0 (20 % errors) is live

            # The error-rate rule is switched off in deployops.yaml while the deploy is down.
            doc = yaml.safe_load(project.path.read_text())
            rules = {**FAST_RULES["rules"], "error-rate": {"enabled": False}}  # type: ignore[dict-item]
            doc["services"]["web"]["rollback"] = {**FAST_RULES, "rules": rules}
            project.path.write_text(yaml.safe_dump(doc))
            check = project.cli("config", "validate")
            assert check.returncode == 0, check.stderr

            resumed = project.cli("resume")
        assert resumed.returncode == 3, resumed.stderr  # rolled back by the original rule
        assert project.prod_target_group() == "web-blue"
        bad = next(d for d in project.deployments() if d["version"] == "2.0.0")
        assert bad["status"] == "rolled_back"
        out = project.cli("-o", "json", "deployments", "show", str(bad["id"]))
        decisions = json.loads(out.stdout)["decisions"]
        assert any(d["rule"] == "error-rate" and d["action"] == "rollback" for d in decisions)
