"""CHK-3 on a real local deploy under load: after the switch deployops runs the smoke checks
through the production listener, connects to a real PostgreSQL, calls the configured external
API (a loopback HTTP server), watches the error logs and the performance of the new version for
their (shortened) windows, and writes the completion report in Markdown and HTML, kept with the
deployment and listed by ``deployops deployments show``. The report is final once the manual
post-deploy items are signed off; a sign-off after that is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployops.clock import SystemClock
from deployops.config.project import load_project
from deployops.drivers.local import control
from deployops.drivers.local.load import Load
from pg import PgCluster
from tests.fixtures_local import ENV
from tests.fixtures_local import write_project as write_deployops

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

DEPLOYOPS = str(Path(sys.executable).parent / "deployops")
PRE_OFF = {
    name: {"enabled": False}
    for name in (
        "unit-tests", "coverage", "e2e-tests", "lint", "security-scan", "code-review",
        "migration-plan", "capacity-check", "deployment-notice", "on-call",
    )
}  # fmt: skip


@pytest.fixture
def external_api() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 200 if self.path == "/status" else 503
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOYOPS_")}
    env.update(DEPLOYOPS_USER="dana", DEPLOYOPS_ROLE="deployer")
    return subprocess.run(
        [DEPLOYOPS, "-c", str(config), "-e", ENV, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )


def test_a_real_deploy_gets_its_post_checks_and_a_completion_report(
    pg_cluster: PgCluster, external_api: str
) -> None:
    root = Path(tempfile.mkdtemp(prefix="dops-post-"))
    try:
        config = write_deployops(
            root,
            blue_green={"health_timeout": 20, "stability_window": 1, "sample_interval": 0.5},
        )
        doc = yaml.safe_load(config.read_text())
        dsn = f"host=127.0.0.1 port={pg_cluster.port} user={pg_cluster.user} dbname=postgres"
        doc["rollback"] = {"period": "1s", "min_requests": 3}
        doc["checklist"] = {
            "pre": PRE_OFF,
            "post": {
                "smoke-tests": {"paths": ["/health", "/"]},
                "database": {"dsn": dsn},
                "external-apis": {"urls": [f"{external_api}/status"]},
                "error-logs": {"duration": "2s"},
                "performance": {"duration": "3s"},
                "business-kpis": {"required": False},
            },
        }
        config.write_text(yaml.safe_dump(doc, sort_keys=False))
        project = load_project(config)
        signed = _cli(config, "checklist", "sign", "rollback-plan", "--by", "alice", "--version",
                      "1.0.0")  # fmt: skip
        assert signed.returncode == 0, signed.stderr
        clock = SystemClock()
        control.up(project, ENV, clock=clock)
        try:
            url = f"http://127.0.0.1:{project.services['web'].port}/"
            with Load(url, workers=2, max_seconds=120) as load:
                out = _cli(config, "deploy", "--version", "1.0.0")
            assert out.returncode == 0, out.stderr
            assert load.result.ok > 0
        finally:
            report = control.down(project, ENV, clock=clock)
        assert report["killed_leftovers"] == [], report
        assert "post-deploy checks of" in out.stderr
        assert "watching web-" in out.stderr  # progress while the windows run

        deps = json.loads(_cli(config, "-o", "json", "deployments", "list").stdout)
        dep_id = deps[0]["id"]
        shown = json.loads(_cli(config, "-o", "json", "checklist", "show", dep_id).stdout)
        post = {i["item"]: i for i in shown["gates"][2]["items"]}
        assert post["smoke-tests"]["status"] == "passed", post["smoke-tests"]
        assert [c["path"] for c in post["smoke-tests"]["evidence"]["checks"]] == ["/health", "/"]
        assert post["database"]["status"] == "passed", post["database"]
        assert "connected to database 'postgres'" in post["database"]["summary"]
        assert post["external-apis"]["status"] == "passed"
        assert post["error-logs"]["status"] == "passed", json.dumps(post["error-logs"])
        assert post["error-logs"]["evidence"]["http_5xx"] == 0
        assert post["performance"]["status"] == "passed", post["performance"]
        assert post["performance"]["evidence"]["worst_p99_ms"] < 500
        assert post["manual-checks"]["status"] == "pending"
        assert post["completion-report"]["status"] == "pending"  # open: manual items left
        pre = {i["item"]: i for i in shown["gates"][0]["items"]}
        assert pre["rollback-plan"]["status"] == "signed"

        detail = json.loads(_cli(config, "-o", "json", "deployments", "show", dep_id).stdout)
        (rep,) = detail["reports"]
        md, html = Path(rep["markdown"]), Path(rep["html"])
        assert md.is_file()
        assert html.is_file()
        assert rep["final"] is False
        text = md.read_text()
        assert f"`{dep_id}`" in text
        assert "| rollback-plan | signed | signed off by alice | alice |" in text
        assert "| database | passed | connected to database 'postgres'" in text
        assert "## What ran" in text
        assert "SwitchListener" in text
        assert "<table>" in html.read_text()
        assert dsn not in text  # where the database is stays out of the report
        human = _cli(config, "deployments", "show", dep_id)
        assert "completion-report" not in human.stdout
        assert f"report    {md}" in human.stdout

        for item in ("manual-checks", "user-feedback"):
            ok = _cli(config, "checklist", "sign", item, "--by", "bob", "--deployment", dep_id)
            assert ok.returncode == 0, ok.stderr
        noted = _cli(config, "checklist", "note", dep_id, "--lesson", "warm the cache first",
                     "--handover", "watch the orders queue")  # fmt: skip
        assert noted.returncode == 0, noted.stderr
        final = json.loads(_cli(config, "-o", "json", "checklist", "report", dep_id).stdout)
        assert final["final"] is True
        text = md.read_text()
        assert "final" in text
        assert "- warm the cache first (dana)" in text
        assert "- watch the orders queue (dana)" in text
        late = _cli(config, "checklist", "sign", "business-kpis", "--by", "carol", "--deployment",
                    dep_id)  # fmt: skip
        assert late.returncode == 2
        assert "its completion report is written" in late.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)
