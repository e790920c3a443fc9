"""CHK-1 through the real console script: a deploy is refused (exit 2) while a pre-deploy item
fails, naming each item and its evidence, and nothing is deployed; manual items are signed off
with ``deployops checklist sign`` and shown by ``deployops checklist show``; an admin may
override a failing item with a reason, which is audited; a release passing its gate is deployed
on the local platform and its deployment notice goes to #deployments through the Slack route
(a loopback HTTP receiver standing for Slack: it cannot show Slack's own rendering)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployops.clock import SystemClock
from deployops.config.project import load_project
from deployops.drivers.local import control
from deployops.store import DeploymentRecord, StateStore
from integration.checklist.artefacts import (
    make_e2e_junit,
    make_junit_and_coverage,
    make_ruff,
    write_project,
)
from integration.notify.receivers import HttpReceiver
from tests.fixtures_local import ENV
from tests.fixtures_local import write_project as write_deployops

pytestmark = pytest.mark.integration

DEPLOYOPS = str(Path(sys.executable).parent / "deployops")
SLACK_PATH = "/services/T000/B000/deployments"


@dataclass(frozen=True)
class Reports:
    good: Path
    bad: Path


def _reports(folder: Path, **faults: bool) -> Path:
    write_project(folder, **faults)
    make_junit_and_coverage(folder)
    make_e2e_junit(folder)
    make_ruff(folder)
    sec = folder / "reports" / "security"
    sec.mkdir(parents=True, exist_ok=True)
    (sec / "ruff.sarif").write_text(make_ruff(folder, "sarif").read_text())
    (folder / "reports" / "approvals.json").write_text(
        json.dumps({"author": "alice", "approvals": ["bob", "carol"]})
    )
    return folder / "reports"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Reports:
    return Reports(
        good=_reports(tmp_path_factory.mktemp("good")),
        bad=_reports(tmp_path_factory.mktemp("bad"), broken=True),
    )


@dataclass
class Cli:
    root: Path
    slack_url: str = ""

    @property
    def config(self) -> Path:
        return self.root / "deployops.yaml"

    def run(self, *args: str, role: str = "deployer", user: str = "dana") -> Any:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOYOPS_")}
        env.update(DEPLOYOPS_ROLE=role, DEPLOYOPS_USER=user)
        if self.slack_url:
            env["DEPLOYOPS_SECRET_SLACK_DEPLOYMENTS"] = self.slack_url
        return subprocess.run(
            [DEPLOYOPS, "-c", str(self.config), "-e", ENV, *args],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
            check=False,
        )

    def json(self, *args: str, **kw: str) -> Any:
        out = self.run("-o", "json", *args, **kw)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def store(self) -> StateStore:
        return StateStore.open(load_project(self.config).state_url())


def _project(root: Path, reports: Path, *, slack: HttpReceiver | None = None) -> Cli:
    shutil.copytree(reports, root / "reports")
    write_deployops(
        root, blue_green={"health_timeout": 20, "stability_window": 1, "sample_interval": 0.5}
    )
    doc = yaml.safe_load((root / "deployops.yaml").read_text())
    doc["checklist"] = {
        "pre": {
            "unit-tests": {"file": "reports/junit.xml"},
            "e2e-tests": {"file": "reports/e2e-junit.xml", "suite": "e2e"},
            "coverage": {"package": "calc"},
        },
        "post": {"business-kpis": {"on_failure": "warn"}},
    }
    cli = Cli(root)
    if slack is not None:
        doc["notifications"] = {
            "channels": {
                "slack-deployments": {
                    "type": "slack",
                    "webhook_url": "secret://slack-deployments",
                    "channel": "#deployments",
                }
            },
            "routes": {"deployment": ["slack-deployments"]},
        }
        cli.slack_url = slack.url(SLACK_PATH)
    (root / "deployops.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return cli


@pytest.fixture
def root() -> Iterator[Path]:
    # short: HAProxy's sockets live under it
    path = Path(tempfile.mkdtemp(prefix="dops-chk-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


MANUAL = ("migration-plan", "rollback-plan", "capacity-check", "on-call")


def _sign_all(cli: Cli, version: str) -> None:
    for item in MANUAL:
        out = cli.run("checklist", "sign", item, "--by", "alice", "--version", version)
        assert out.returncode == 0, out.stderr


def test_deploy_is_refused_naming_each_failing_item_and_its_evidence(
    root: Path, reports: Reports
) -> None:
    cli = _project(root, reports.bad)
    out = cli.run("deploy", "--version", "1.0.0")
    assert out.returncode == 2, out.stderr
    err = out.stderr
    assert "checklist.pre.unit-tests: failed: 1 of 4 tests failed" in err
    assert "tests.test_broken::test_add_is_wrong" in err
    for item in MANUAL:
        assert f"checklist.pre.{item}: pending: not signed off" in err
    assert "deployops checklist sign migration-plan" in err
    assert "checklist.pre.coverage" not in err  # it passes
    store = cli.store()
    try:
        assert store.list_deployments() == []  # nothing deployed
        refused = store.events(kind="deploy.refused")
        assert refused
        assert "unit-tests" in refused[-1].message
        gate = refused[-1].data["gate"]
        assert "unit-tests" in gate["failing"]
    finally:
        store.close()


def test_sign_offs_are_shown_and_bad_sign_offs_refused(root: Path, reports: Reports) -> None:
    cli = _project(root, reports.good)
    signed = cli.json(
        "checklist", "sign", "rollback-plan", "--by", "alice", "--version", "1.0.0",
        "--note", "docs/rollback.md",
    )  # fmt: skip
    assert signed["status"] == "signed"
    assert signed["deployment"] is None
    shown = cli.json("checklist", "show", "--version", "1.0.0")
    pre = shown["gates"][0]
    items = {i["item"]: i for i in pre["items"]}
    assert items["rollback-plan"]["status"] == "signed"
    assert items["rollback-plan"]["by"] == "alice"
    assert items["rollback-plan"]["note"] == "docs/rollback.md"
    assert items["unit-tests"]["status"] == "passed"
    assert items["unit-tests"]["evidence"]["tests"] == 3
    assert items["migration-plan"]["status"] == "pending"
    assert pre["failing"] == ["migration-plan", "capacity-check", "on-call"]
    assert items["deployment-notice"]["status"] == "pending"  # sent when the deploy starts
    assert [g["stage"] for g in shown["gates"]] == ["pre", "during", "post"]
    text = cli.run("checklist", "show", "--version", "1.0.0")
    assert text.returncode == 0
    assert "rollback-plan" in text.stdout
    assert "signed off by alice" in text.stdout
    # A sign-off for another version does not count for this one.
    cli.json("checklist", "sign", "on-call", "--by", "bob", "--version", "1.0.1")
    again = cli.json("checklist", "show", "--version", "1.0.0")
    assert {i["item"]: i["status"] for i in again["gates"][0]["items"]}["on-call"] == "pending"

    unknown = cli.run("checklist", "sign", "rollback-plans", "--by", "a", "--version", "1.0.0")
    assert unknown.returncode == 2
    assert "unknown checklist item 'rollback-plans' (did you mean 'rollback-plan'?)" in (
        unknown.stderr
    )
    automated = cli.run("checklist", "sign", "unit-tests", "--by", "a", "--version", "1.0.0")
    assert automated.returncode == 2
    assert "automated" in automated.stderr
    viewer = cli.run(
        "checklist", "sign", "on-call", "--by", "a", "--version", "1.0.0", role="viewer"
    )
    assert viewer.returncode == 2
    assert "needs the deployer role" in viewer.stderr
    no_version = cli.run("checklist", "sign", "on-call", "--by", "a")
    assert no_version.returncode == 2
    assert "--version" in no_version.stderr
    store = cli.store()
    try:
        audit = [a for a in store.audit_log() if a.action == "checklist.sign"]
        assert {a.detail["item"] for a in audit} == {"rollback-plan", "on-call"}
        assert all(a.actor == "dana" for a in audit)
    finally:
        store.close()


def test_a_post_deploy_sign_off_after_the_deploy_ended_is_refused(
    root: Path, reports: Reports
) -> None:
    cli = _project(root, reports.good)
    now = datetime.now(UTC)
    store = cli.store()
    try:
        store.create_deployment(
            DeploymentRecord(
                id="dep-20261201-100000-abcd",
                environment=ENV,
                service="web",
                version="1.0.0",
                strategy="blue-green",
                status="rolled_back",
                created_at=now,
                updated_at=now,
                finished_at=now,
            )
        )
    finally:
        store.close()
    out = cli.run(
        "checklist", "sign", "user-feedback", "--by", "bob", "--deployment", "dep-20261201-1000"
    )
    assert out.returncode == 2
    assert "has ended (it rolled_back): its checklist is closed" in out.stderr
    pre = cli.run(
        "checklist", "sign", "on-call", "--by", "bob", "--deployment", "dep-20261201-1000"
    )
    assert pre.returncode == 2
    assert "pre-deploy items are signed before the deploy" in pre.stderr


def test_overriding_a_failing_item_needs_an_admin_and_a_reason(
    root: Path, reports: Reports
) -> None:
    cli = _project(root, reports.bad)
    _sign_all(cli, "1.0.0")
    out = cli.run("deploy", "--version", "1.0.0", "--override-gate", "unit-tests", "--reason", "x")
    assert out.returncode == 2
    assert "overriding a checklist item needs the admin role; dana is deployer" in out.stderr
    out = cli.run("deploy", "--version", "1.0.0", "--override-gate", "unit-tests", role="admin")
    assert out.returncode == 2
    assert "--override-gate needs --reason" in out.stderr
    out = cli.run(
        "deploy", "--version", "1.0.0", "--override-gate", "unit-test", "--reason", "x",
        role="admin",
    )  # fmt: skip
    assert out.returncode == 2
    assert "unknown pre-deploy item 'unit-test'" in out.stderr
    # Overriding one item leaves the others judged: only the overridden one is let through.
    out = cli.run("deploy", "--version", "1.0.0", "--override-gate", "lint", "--reason", "x",
                  role="admin")  # fmt: skip
    assert out.returncode == 2
    assert "checklist.pre.unit-tests" in out.stderr


@pytest.mark.e2e
@pytest.mark.slow
def test_a_release_passing_its_gate_deploys_and_announces_itself_in_deployments(
    root: Path, reports: Reports, http_receiver: HttpReceiver
) -> None:
    cli = _project(root, reports.bad, slack=http_receiver)
    _sign_all(cli, "1.0.0")
    config = load_project(cli.config)
    clock = SystemClock()
    control.up(config, ENV, clock=clock)
    before = datetime.now(UTC)
    try:
        out = cli.run(
            "deploy", "--version", "1.0.0", "--override-gate", "unit-tests",
            "--reason", "flaky test quarantined in #123", role="admin", user="erin",
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
    finally:
        report = control.down(config, ENV, clock=clock)
    assert report["killed_leftovers"] == [], report
    bodies = http_receiver.bodies(SLACK_PATH)
    body = bodies[0]  # the notice comes first; the outcome follows on the same route
    assert body["channel"] == "#deployments"
    assert "Deploying web 1.0.0 to development" in body["text"]
    assert [b for b in bodies if "Deploying" in b["text"]] == [body]
    (dep,) = cli.json("deployments", "list")
    assert dep["status"] == "succeeded"
    shown = cli.json("checklist", "show", dep["id"])
    assert shown["deployment"] == dep["id"]
    pre = {i["item"]: i for i in shown["gates"][0]["items"]}
    notice = pre["deployment-notice"]
    assert notice["status"] == "passed"
    sent_at = datetime.fromisoformat(notice["evidence"]["sent_at"])
    # ticked with the message's time: sent after the gate passed, before the deploy began
    assert before <= sent_at <= datetime.fromisoformat(dep["created_at"])
    assert notice["evidence"]["slack_channel"] == "#deployments"
    assert pre["unit-tests"]["status"] == "overridden"
    assert pre["unit-tests"]["by"] == "erin"
    assert pre["unit-tests"]["note"] == "flaky test quarantined in #123"
    assert pre["rollback-plan"]["status"] == "signed"
    store = cli.store()
    try:
        (audit,) = [a for a in store.audit_log() if a.action == "checklist.override"]
        assert audit.actor == "erin"
        assert audit.detail["item"] == "unit-tests"
        assert audit.detail["reason"] == "flaky test quarantined in #123"
        assert store.checklist_entries(unlinked=True) == []  # all kept with the deployment
    finally:
        store.close()
