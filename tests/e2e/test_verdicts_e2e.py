"""Verdicts on what happened, on the real local platform (RB-1): a release slower than the
rule period is rolled back after the escalation, whatever the period."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from deployops.drivers.local.load import Load
from tests.e2e.conftest import FAST_RULES, running_project

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.parametrize(
    ("period", "window", "escalate_after", "stability"),
    [(1, 3, 6, 12), (3, 9, 12, 20)],
    ids=["1s-periods", "3s-periods"],
)
def test_a_release_slower_than_the_rule_period_warns_then_rolls_back_rb1(
    period: int, window: int, escalate_after: int, stability: int
) -> None:
    """3.0.0 answers in 1.5 s. With 1 s periods its requests complete in bursts, so one period
    in three has requests in flight and none completed; that period is judged on the requests
    that completed next, not counted as good, and the release is rolled back."""
    rules: dict[str, Any] = {
        **FAST_RULES,
        "rules": {
            **FAST_RULES["rules"],
            "p99-latency": {
                "period": f"{period}s",
                "window": f"{window}s",
                "escalate_after": f"{escalate_after}s",
            },
        },
    }
    settings = {
        "health_timeout": 20,
        "stability_window": stability,
        "sample_interval": 0.5,
        "smoke_checks": [{"path": "/health", "status": 200}],
    }
    with running_project(rollback=rules, blue_green=settings) as project:
        assert project.cli("deploy", "--version", "1.0.0").returncode == 0
        url = f"http://127.0.0.1:{project.config.services['web'].port}/"
        with Load(url, workers=12, max_seconds=120):
            out = project.cli("deploy", "--version", "3.0.0", timeout=180)
        assert out.returncode == 3, out.stdout + out.stderr
        assert project.prod_target_group() == "web-blue"
        bad = next(d for d in project.deployments() if d["version"] == "3.0.0")
        shown = project.cli("-o", "json", "deployments", "show", str(bad["id"]))
        decisions = json.loads(shown.stdout)["decisions"]
        p99 = [d for d in decisions if d["rule"] == "p99-latency"]
        actions = [d["action"] for d in p99]
        assert "notify" in actions, decisions  # the warning first
        assert actions[-1] == "rollback", decisions  # then the rollback once it lasted
        evaluation = p99[-1]["evidence"]["evaluation"]
        assert evaluation["judged"] is True
        assert evaluation["judged_samples"] > 0
        assert evaluation["basis"].startswith("judged on ")


def test_a_lock_left_by_a_killed_deploy_names_resume_which_takes_it_over_dep7() -> None:
    """SIGKILL a deploy after its first step: the next deploy is refused (exit 4) with the
    holder reported as no longer running and `deployops resume` as the fix; resume takes the
    lock over and finishes; then deploys are free again."""
    with running_project() as project:
        first = project.cli("deploy", "--version", "v1.0.0")  # one spelling everywhere
        assert first.returncode == 0, first.stderr
        assert "deployed web 1.0.0 " in first.stdout
        assert project.deployments()[0]["version"] == "1.0.0"
        live = project.service(project.prod_target_group())
        assert live["task_definition"].endswith(":1")
        task_env = json.loads(
            project.cli("-o", "json", "deployments", "show", project.deployments()[0]["id"]).stdout
        )
        assert "v1.0.0" not in json.dumps(task_env)
        # the replicas' logs are where `local status` says (a failed health wait points there)
        for task in live["tasks"]:
            assert Path(task["log"]).is_file(), task
        proc = project.popen("-o", "json", "deploy", "--version", "1.1.0")
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            if event["kind"] == "step.succeeded":
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=30)
        refused = project.cli("-o", "json", "deploy", "--version", "1.2.0")
        assert refused.returncode == 4, refused.stderr
        body = json.loads(refused.stdout.splitlines()[-1])
        assert body["code"] == "lock_held"
        assert body["lock"]["holder_running"] is False
        assert "no longer running" in body["message"]
        dep_id = body["lock"]["deployment_id"]
        assert body["fix"] == f"`deployops resume {dep_id}` takes the lock over and finishes it"
        assert "no longer running" in refused.stderr
        resumed = project.cli("resume", dep_id)
        assert resumed.returncode == 0, resumed.stderr
        assert project.cli("deploy", "--version", "1.2.0").returncode == 0


def test_without_traffic_nothing_passes_unjudged_rb1() -> None:
    """Nobody calls the service. The observation says every few seconds what each rule sees,
    sends bounded synthetic requests when the rules lack data, and then judges: a good
    release goes live with every rule judged; a release failing 20 % of requests is rolled
    back instead of passing silently."""
    health_only = {
        "health_timeout": 20,
        "stability_window": 4,
        "sample_interval": 0.5,
        # /health only: the failures must be left for the rules to find, not a smoke check.
        "smoke_checks": [{"path": "/health", "status": 200}],
    }
    # 20 requests a period: more than deployops' own smoke check and switch probes send, so
    # the rules can only be judged once synthetic requests have been sent
    rules = {**FAST_RULES, "min_requests": 20}
    with running_project(blue_green=health_only, rollback=rules) as project:
        good = project.cli("deploy", "--version", "1.0.0", timeout=180)
        assert good.returncode == 0, good.stdout + good.stderr
        assert "observing web-blue: error-rate" in good.stderr  # progress lines
        assert "synthetic requests" in good.stderr
        assert "judged 5 of 5 rules" in good.stderr
        assert good.stdout.strip().endswith("rules judged: 5 of 5")  # the final line

        bad = project.cli("deploy", "--version", "2.0.0", timeout=180)
        assert bad.returncode == 3, bad.stdout + bad.stderr
        assert project.prod_target_group() == "web-blue"
        assert "error-rate" in bad.stderr
        rolled = next(d for d in project.deployments() if d["version"] == "2.0.0")
        assert rolled["status"] == "rolled_back"


def test_the_incident_report_counts_what_the_clients_saw_within_1_percent_rb2() -> None:
    """Under load, 2.0.0 fails 20 % of requests and is rolled back. The report's impact comes
    from the proxy's own per-request log: every request 2.0.0 answered, from the first to the
    last, matches the clients' own count within 1 % (a few smoke and traffic checks on top)."""
    from deployops.store import StateStore

    health_only = {
        "health_timeout": 20,
        "stability_window": 6,
        "sample_interval": 0.5,
        "smoke_checks": [{"path": "/health", "status": 200}],
    }
    with running_project(blue_green=health_only) as project:
        assert project.cli("deploy", "--version", "1.0.0", timeout=180).returncode == 0
        url = f"http://127.0.0.1:{project.config.services['web'].port}/"
        with Load(url, workers=3, max_seconds=120) as load:
            out = project.cli("deploy", "--version", "2.0.0", timeout=180)
        assert out.returncode == 3, out.stdout + out.stderr
        res = load.result
        client_failed = res.by_status.get(500, 0)  # only 2.0.0 fails
        client_served = res.by_version.get("2.0.0", 0) + client_failed
        assert client_served > 100, res.by_version
        bad = next(d for d in project.deployments() if d["version"] == "2.0.0")
        store = StateStore.open(project.config.state_url())
        try:
            (report,) = store.events(deployment_id=str(bad["id"]), kind="incident.report")
        finally:
            store.close()
        impact = report.data["impact"]
        # The proxy also saw what deployops itself sent 2.0.0: one /health smoke check and the
        # three probes confirming the switch.
        checks = 4
        assert impact["requests"] == pytest.approx(client_served + checks, rel=0.01), impact
        assert impact["failed_requests"] == pytest.approx(client_failed, rel=0.01, abs=3)
        assert "proxy log" in impact["counted_from"]
