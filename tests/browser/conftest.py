"""The dashboard in Debian's Chromium, driven by Playwright, against ``deployops serve`` on the
real local platform (HAProxy, supervised replicas of the sample service, the metrics
collector), with short configured durations. Playwright cannot download a browser here: it
drives /usr/bin/chromium (``tools/system-deps.sh`` installs it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.conftest import DEPLOYOPS, Project, running_project
from tests.fixtures_local import ENV, free_port

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts" / "browser"
DOC_IMAGES = ROOT / "docs" / "images"
AXE = ROOT / "tools" / "web-vendor" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# RB-1 rules on 1 s periods (as in the e2e tests) and a /health-only smoke check, so a
# 20 % failing release always reaches the rules.
BLUE_GREEN = {
    "health_timeout": 20,
    "stability_window": 5,
    "sample_interval": 0.5,
    "smoke_checks": [{"path": "/health", "status": 200}],
}


@dataclass
class Dashboard:
    project: Project
    url: str
    tokens: dict[str, str]
    proc: subprocess.Popen[str]
    stderr_path: Path

    def api(self, method: str, path: str, role: str, **kw: Any) -> httpx.Response:
        return httpx.request(
            method,
            self.url + path,
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
            timeout=30,
            trust_env=False,
            **kw,
        )

    def wait_done(self, operation_id: str, timeout_s: float = 120.0) -> dict[str, Any]:
        """Follow the operation's event stream until it ends; returns the final operation."""
        final: dict[str, Any] = {}
        with httpx.stream(
            "GET",
            f"{self.url}/api/operations/{operation_id}/events",
            headers={"Authorization": f"Bearer {self.tokens['viewer']}"},
            timeout=timeout_s,
            trust_env=False,
        ) as stream:
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: ") and event == "operation":
                    final = json.loads(line[len("data: ") :])
        return final

    def login(self, page: Page, role: str, path: str = "/") -> None:
        page.goto(f"{self.url}/login?next={path}")
        page.get_by_label("API token").fill(self.tokens[role])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{self.url}{path}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")


def _token(project: Project, name: str, role: str) -> str:
    out = project.cli("-o", "json", "tokens", "create", "--name", name, "--role", role)
    assert out.returncode == 0, out.stderr
    return str(json.loads(out.stdout)["token"])


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    with running_project(blue_green=BLUE_GREEN) as project:
        tokens = {role: _token(project, f"{role}-user", role) for role in ("viewer", "deployer")}
        port = free_port()
        logs = tmp_path_factory.mktemp("serve")
        stderr_path = logs / "serve.err"
        with stderr_path.open("w", encoding="utf-8") as err:
            proc = subprocess.Popen(
                [DEPLOYOPS, "-c", str(project.path), "-e", ENV, "serve", "--port", str(port)],
                stdout=err,
                stderr=subprocess.STDOUT,
                text=True,
            )
        dash = Dashboard(
            project=project,
            url=f"http://127.0.0.1:{port}",
            tokens=tokens,
            proc=proc,
            stderr_path=stderr_path,
        )
        try:
            _wait_ready(dash)
            yield dash
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _wait_ready(dash: Dashboard) -> None:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert dash.proc.poll() is None, f"serve exited: {dash.stderr()}"
        try:
            if httpx.get(dash.url + "/healthz", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"serve did not become healthy: {dash.stderr()}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Chromium is missing: run `sudo bash tools/system-deps.sh`"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()


def screenshot(page: Page, name: str) -> Path:
    """Saved as a test artefact; with UPDATE_DOCS_SCREENSHOTS=1 also into docs/images."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_IMAGES / f"{name}.png")
    return path


def axe_serious(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the current page."""
    assert AXE.exists(), "axe-core is missing: run `make deps` (tools/vendor-web.sh)"
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
