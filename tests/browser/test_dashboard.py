"""The dashboard in Chromium against ``deployops serve`` on the real local platform: a deploy
started through the API moving through its phases live on the overview, a rolled-back
deployment's rule chart with its threshold and decision marker (RB-1, RB-2), a viewer without
deploy controls and refused by the API (SEC-4), and basic accessibility (axe-core, keyboard)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from deployops.drivers.local.load import Load
from tests.browser.conftest import Dashboard, axe_serious, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Reads the row of one deployment every 50 ms and keeps each (status, phase) it showed, and
# marks the window so a reload would be noticed: the page must change by itself.
WATCH = """(id) => {
  window.__noReload = true;
  window.__seen = [];
  setInterval(() => {
    const row = document.querySelector(`tr[data-id="${id}"]`);
    if (!row) return;
    const seen = [row.querySelector('[data-status]').textContent.trim(),
                  row.querySelector('[data-phase]').textContent.trim()];
    const last = window.__seen[window.__seen.length - 1];
    if (!last || last[0] !== seen[0] || last[1] !== seen[1]) window.__seen.push(seen);
  }, 50);
}"""


def deploy(dash: Dashboard, version: str) -> dict[str, Any]:
    resp = dash.api("POST", "/api/deployments", "deployer", json={"version": version})
    assert resp.status_code == 202, resp.text
    op: dict[str, Any] = resp.json()
    return op


def live_version(dash: Dashboard) -> str | None:
    svc = dash.api("GET", "/api/services/web", "viewer").json()
    return svc["version"]  # type: ignore[no-any-return]


def test_overview_shows_an_api_deploy_move_through_its_phases_live(
    dashboard: Dashboard, page: Page
) -> None:
    dashboard.login(page, "deployer")
    expect(page.get_by_role("heading", name="Services", exact=True)).to_be_visible()
    op = deploy(dashboard, "1.0.0")
    dep = op["deployment_id"]
    page.evaluate(WATCH, dep)
    row = page.locator(f'tr[data-id="{dep}"]')
    expect(row).to_be_visible(timeout=10_000)  # appeared without a reload
    expect(row.locator("[data-status]")).to_have_text("succeeded", timeout=90_000)
    assert page.evaluate("window.__noReload") is True
    seen = page.evaluate("window.__seen")
    phases = [phase for status, phase in seen if status == "running"]
    order = ["prepare", "deploy", "switch", "cleanup"]
    assert "switch" in phases, seen
    assert len(set(phases)) >= 2, seen
    assert [p for p in order if p in phases] == list(dict.fromkeys(phases)), seen
    assert seen[-1][0] == "succeeded"
    final = dashboard.wait_done(op["id"])
    assert final["status"] == "succeeded"
    card = page.locator('article[data-service="web"]')
    expect(card.locator(".version")).to_have_text("1.0.0", timeout=10_000)
    expect(card.locator(".badge")).to_have_text("healthy")
    screenshot(page, "dashboard-overview")


def test_rolled_back_deployment_shows_the_failing_rule_with_threshold_and_decision(
    dashboard: Dashboard, page: Page
) -> None:
    if live_version(dashboard) != "1.0.0":
        assert dashboard.wait_done(deploy(dashboard, "1.0.0")["id"])["status"] == "succeeded"
    port = dashboard.project.config.services["web"].port
    with Load(f"http://127.0.0.1:{port}/", workers=3, max_seconds=90):
        op = deploy(dashboard, "2.0.0")  # 20 % of requests fail
        final = dashboard.wait_done(op["id"])
    assert final["status"] == "rolled_back", final
    dep = op["deployment_id"]
    dashboard.login(page, "viewer", f"/deployments/{dep}")
    figure = page.locator("figure.rule-chart.failed")
    expect(figure).to_have_count(1)
    expect(figure.locator("figcaption")).to_contain_text("error-rate")
    canvas = figure.locator("canvas")
    expect(canvas).to_be_visible()
    chart = canvas.evaluate(
        """(c) => { const ch = Chart.getChart(c);
                    return ch.data.datasets.map(d => ({label: d.label, n: d.data.length,
                      ys: d.data.map(p => p.y), action: d.data.map(p => p.action || null)})); }"""
    )
    labels = {d["label"].split(" ")[0]: d for d in chart}
    threshold = labels["threshold"]
    assert threshold["n"] == 2 and len(set(threshold["ys"])) == 1
    assert max(labels["ErrorRate"]["ys"]) > threshold["ys"][0], chart  # measured above it
    assert "rollback" in labels["decision"]["action"], chart
    assert "evaluation" in labels, chart  # the window
    expect(page.locator("#timeline [data-phase='switch']")).to_be_visible()
    expect(page.locator("#status")).to_have_text("rolled_back")
    expect(page.get_by_role("heading", name="Incident report")).to_be_visible()
    screenshot(page, "dashboard-rolled-back")


def test_a_viewer_sees_no_deploy_button_and_is_refused_by_the_api(
    dashboard: Dashboard, page: Page
) -> None:
    dashboard.login(page, "viewer")
    expect(page.get_by_role("heading", name="Services", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Deploy")).to_have_count(0)
    expect(page.locator("#deploy-form")).to_have_count(0)
    status = page.evaluate(
        """async () => (await fetch('/api/deployments', {method: 'POST',
             headers: {'Content-Type': 'application/json', 'X-Deployops-Request': '1'},
             body: JSON.stringify({version: '1.1.0'})})).status"""
    )
    assert status == 403
    resp = dashboard.api("POST", "/api/deployments", "viewer", json={"version": "1.1.0"})
    assert resp.status_code == 403
    assert "deployer" in resp.json()["error"]["message"]
    screenshot(page, "dashboard-viewer")


def test_pages_have_no_serious_accessibility_violations(dashboard: Dashboard, page: Page) -> None:
    dashboard.login(page, "deployer")
    deployments = dashboard.api("GET", "/api/deployments", "viewer").json()
    paths = ["/", "/alarms", "/login"]
    paths += [f"/deployments/{d['id']}" for d in deployments[:2]]
    for path in paths:
        page.goto(dashboard.url + path)
        assert axe_serious(page) == [], path
    page.goto(dashboard.url + "/alarms")
    screenshot(page, "dashboard-alarms")


def test_every_control_is_reachable_by_keyboard_and_labelled(
    dashboard: Dashboard, page: Page
) -> None:
    dashboard.login(page, "deployer")
    controls = page.evaluate(
        """() => [...document.querySelectorAll('a[href], button, input, select, textarea')]
                 .filter(e => e.type !== 'hidden').map(e => e.id || e.textContent.trim())"""
    )
    reached: list[str] = []
    for _ in range(len(controls) + 10):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate(
                "() => document.activeElement.id || document.activeElement.textContent.trim()"
            )
        )
    missing = [c for c in controls if c not in reached]
    assert missing == [], (controls, reached)
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                 .filter(e => !(e.labels && e.labels.length)).map(e => e.id || e.name)"""
    )
    assert unlabelled == []
    # the deploy form works from the keyboard alone
    page.focus("#deploy-version")
    page.keyboard.type("1.1.0")
    page.keyboard.press("Enter")
    expect(page.locator("#deploy-result")).to_contain_text("deploy started", timeout=30_000)
    op_id = page.locator("#deploy-result a").inner_text()
    assert dashboard.wait_done(op_id)["status"] == "succeeded"
