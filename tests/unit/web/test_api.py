"""The JSON API (SEC-4 roles, DEP-* deploys, RB-1..RB-3 rollbacks, MON-1 alarms, IAC-5 scaling)
on the in-memory platform: every route for every role, operations with their progress stream,
and bad input answered with a JSON error naming the field, never a traceback."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from deployops.domain.access import Role
from deployops.store import AlarmHistoryRecord, AlarmStateRecord, ScalingActivity
from deployops.web.auth import TokenFile, create_token, hash_token
from tests.unit.web.conftest import TOKENS, Web

# (method, path, body, the lowest role allowed)
ROUTES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/api/whoami", None, "viewer"),
    ("GET", "/api/services", None, "viewer"),
    ("GET", "/api/services/web", None, "viewer"),
    ("GET", "/api/deployments", None, "viewer"),
    ("GET", "/api/deployments/{dep}", None, "viewer"),
    ("GET", "/api/deployments/{dep}/decisions", None, "viewer"),
    ("GET", "/api/deployments/{dep}/charts", None, "viewer"),
    ("GET", "/api/operations", None, "viewer"),
    ("GET", "/api/alarms", None, "viewer"),
    ("GET", "/api/scaling", None, "viewer"),
    ("GET", "/api/incidents", None, "viewer"),
    ("GET", "/api/delivery", None, "viewer"),
    ("GET", "/api/events?max_seconds=0.01", None, "viewer"),
    ("GET", "/api/audit", None, "admin"),
    ("POST", "/api/deployments", {"version": "1.1.0", "dry_run": True}, "deployer"),
    ("POST", "/api/deployments/{dep}/rollback", {"dry_run": True}, "deployer"),
    ("POST", "/api/deployments/{dep}/resume", {}, "deployer"),
]
RANK = {"viewer": 0, "deployer": 1, "admin": 2}


def deploy(web: Web, version: str, role: str = "deployer", **body: Any) -> dict[str, Any]:
    resp = web.client.post(
        "/api/deployments", json={"version": version, **body}, headers=web.as_(role)
    )
    assert resp.status_code == 202, resp.text
    web.wait_idle()
    data: dict[str, Any] = resp.json()
    return data


def no_traceback(resp: Any) -> None:
    assert "Traceback" not in resp.text
    assert 'File "' not in resp.text


@pytest.fixture
def deployed(web: Web) -> str:
    op = deploy(web, "1.0.0")
    return str(op["deployment_id"])


@pytest.mark.parametrize(("method", "path", "body", "needed"), ROUTES)
def test_every_route_asks_for_its_role_sec4(
    web: Web, deployed: str, method: str, path: str, body: dict[str, Any] | None, needed: str
) -> None:
    url = path.format(dep=deployed)
    send = {"json": body} if body is not None else {}
    anon = web.client.request(method, url, **send)  # type: ignore[arg-type]
    assert anon.status_code == 401, anon.text
    assert anon.json()["error"]["code"] == "unauthenticated"
    assert anon.headers["www-authenticate"] == "Bearer"
    wrong = web.client.request(
        method,
        url,
        headers={"Authorization": "Bearer not-a-token"},
        **send,  # type: ignore[arg-type]
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_token"
    for role in ("viewer", "deployer", "admin"):
        resp = web.client.request(method, url, headers=web.as_(role), **send)  # type: ignore[arg-type]
        if RANK[role] < RANK[needed]:
            assert resp.status_code == 403, (role, resp.text)
            err = resp.json()["error"]
            assert err["code"] == "forbidden"
            assert needed in err["message"]
        else:
            assert resp.status_code not in (401, 403, 500), (role, resp.text)
        no_traceback(resp)


def test_deploy_returns_an_operation_at_once_and_streams_its_progress(web: Web) -> None:
    resp = web.client.post(
        "/api/deployments", json={"service": "web", "version": "1.0.0"}, headers=web.as_("deployer")
    )
    assert resp.status_code == 202, resp.text
    op = resp.json()
    # the runner's operation is the deployment: one id for both
    assert op["id"].startswith("dep-")
    assert op["deployment_id"] == op["id"]
    assert op["kind"] == "deploy"
    assert op["actor"] == "api:dan"
    assert op["links"]["events"] == f"/api/operations/{op['id']}/events"
    with web.client.stream("GET", op["links"]["events"], headers=web.as_("viewer")) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    kinds = [line[len("event: ") :] for line in text.splitlines() if line.startswith("event: ")]
    assert kinds[0] == "deploy.started"
    assert "step.succeeded" in kinds
    assert kinds[-2:] == ["deploy.succeeded", "operation"]
    final = json.loads(text.strip().split("\n")[-1][len("data: ") :])
    assert final["status"] == "succeeded"

    detail = web.client.get(f"/api/deployments/{op['deployment_id']}", headers=web.as_("viewer"))
    body = detail.json()
    assert body["status"] == "succeeded"
    assert body["owner"] == "api:dan"
    assert next(s["phase"] for s in body["steps"]) == "prepare"
    assert all(s["status"] == "succeeded" for s in body["steps"])

    services = web.client.get("/api/services", headers=web.as_("viewer")).json()
    (svc,) = services
    assert svc["version"] == "1.0.0"
    assert svc["colour"] == "blue"
    assert svc["replicas"] == {"desired": 4, "running": 4, "healthy": 4}
    assert svc["health"] == "healthy"
    assert svc["last_deployment"]["id"] == op["deployment_id"]

    listed = web.client.get("/api/operations", headers=web.as_("viewer")).json()
    assert [(o["id"], o["status"], o["actor"]) for o in listed] == [
        (op["id"], "succeeded", "api:dan")
    ]
    assert web.client.get(op["links"]["self"], headers=web.as_("viewer")).json()["status"] == (
        "succeeded"
    )


def test_rolled_back_deploy_has_charts_with_threshold_window_and_decision_rb1_rb2(
    web: Web, deployed: str
) -> None:
    op = deploy(web, "2.0.0")  # 20 % errors: rolled back by the error-rate rule
    state = web.client.get(f"/api/operations/{op['id']}", headers=web.as_("viewer")).json()
    assert state["status"] == "rolled_back"
    dep = op["deployment_id"]
    charts = web.client.get(f"/api/deployments/{dep}/charts", headers=web.as_("viewer")).json()
    failing = charts[0]
    assert failing["failed"] is True
    assert "error" in failing["rule"]
    assert failing["threshold"] == pytest.approx(5.0)
    assert failing["comparison"] in (">", ">=", "GreaterThanThreshold")
    assert failing["series"], "the measured periods"
    assert max(p["value"] for p in failing["series"] if p["value"] is not None) > 5.0
    assert failing["window"]["from"] and failing["window"]["to"]
    assert [d["action"] for d in failing["decisions"]][-1] == "rollback"
    decisions = web.client.get(
        f"/api/deployments/{dep}/decisions", headers=web.as_("viewer")
    ).json()
    assert decisions[-1]["evidence"]["evaluation"]["rule"]["threshold"] == failing["threshold"]
    assert failing["baseline"], "the previous version's periods (RB-2)"
    detail = web.client.get(f"/api/deployments/{dep}", headers=web.as_("viewer")).json()
    assert detail["status"] == "rolled_back"
    assert detail["rolled_back_by"], "the rollback is its own deployment, linked"
    incidents = web.client.get("/api/incidents", headers=web.as_("viewer")).json()
    assert incidents[0]["deployment_id"] == dep
    assert "2.0.0" in incidents[0]["markdown"]
    delivery = web.client.get("/api/delivery", headers=web.as_("viewer")).json()
    figures = delivery["services"]["web"]
    assert figures["deployments"] == 2
    assert figures["failed"] == 1
    assert figures["change_failure_rate"] == pytest.approx(0.5)
    assert figures["time_to_restore_s"] is not None
    assert figures["lead_time_s"] is not None


def test_dry_run_deploy_returns_the_plan_and_changes_nothing(web: Web) -> None:
    resp = web.client.post(
        "/api/deployments", json={"version": "1.0.0", "dry_run": True}, headers=web.as_("deployer")
    )
    assert resp.status_code == 200, resp.text
    plan = resp.json()
    assert plan["dry_run"] is True
    assert plan["to"] == "1.0.0"
    assert [s["phase"] for s in plan["steps"]][:1] == ["prepare"]
    assert web.rig.store.list_deployments() == []


def test_rollback_preview_then_rollback_rb3(web: Web, deployed: str) -> None:
    second = deploy(web, "1.1.0")["deployment_id"]
    preview = web.client.post(
        f"/api/deployments/{second}/rollback", json={"dry_run": True}, headers=web.as_("deployer")
    )
    assert preview.status_code == 200, preview.text
    plan = preview.json()
    assert plan["to_version"] == "1.0.0"
    assert plan["from_version"] == "1.1.0"
    assert {c["name"] for c in plan["checks"]} >= {"database compatibility"}
    assert plan["steps"]
    assert len(web.rig.store.list_deployments()) == 2  # a preview changes nothing
    resp = web.client.post(
        f"/api/deployments/{second}/rollback", json={}, headers=web.as_("deployer")
    )
    assert resp.status_code == 202, resp.text
    web.wait_idle()
    op = web.client.get(f"/api/operations/{resp.json()['id']}", headers=web.as_("viewer")).json()
    assert op["kind"] == "rollback"
    rb = web.client.get(f"/api/deployments/{op['deployment_id']}", headers=web.as_("viewer"))
    assert rb.json()["reverts"] == second
    assert web.client.get("/api/services/web", headers=web.as_("viewer")).json()["version"] == (
        "1.0.0"
    )


def test_second_deploy_while_one_holds_the_lock_is_409_naming_the_holder(web: Web) -> None:
    web.rig.store.acquire_lock(
        "staging/web", owner="alice@ci:42", reason="deploy web 1.0.0", now=web.rig.clock.now()
    )
    resp = web.client.post(
        "/api/deployments", json={"version": "1.0.0"}, headers=web.as_("deployer")
    )
    assert resp.status_code == 409, resp.text
    err = resp.json()["error"]
    assert err["code"] == "lock_held"
    assert err["holder"]["owner"] == "alice@ci:42"
    assert "alice@ci:42" in err["message"]
    assert web.rig.store.list_deployments() == []
    svc = web.client.get("/api/services/web", headers=web.as_("viewer")).json()
    assert svc["lock"]["owner"] == "alice@ci:42"


def test_resume_of_a_finished_deployment_is_refused(web: Web, deployed: str) -> None:
    resp = web.client.post(
        f"/api/deployments/{deployed}/resume", json={}, headers=web.as_("deployer")
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["issues"][0]["path"] == "path.deployment_id"


@pytest.mark.parametrize(
    ("content", "status", "code", "path"),
    [
        (b'{"version": "1.0.0"', 400, "malformed_json", "body"),
        (b'{"version": "1.0.0", "colour": "red"}', 422, "invalid_request", "body.colour"),
        (b'{"service": "web"}', 422, "invalid_request", "body.version"),
        (b'{"version": 7}', 422, "invalid_request", "body.version"),
        (b'{"version": "latest"}', 422, "refused", "body.version"),
        (b'{"version": "1.0.0", "strategy": "yolo"}', 422, "invalid_request", "body.strategy"),
        (b'{"version": "1.0.0", "service": "nope"}', 422, "refused", "body.service"),
        (b"[1, 2]", 422, "invalid_request", "body"),
    ],
)
def test_bad_deploy_bodies_name_the_field(
    web: Web, content: bytes, status: int, code: str, path: str
) -> None:
    resp = web.client.post(
        "/api/deployments",
        content=content,
        headers={**web.as_("deployer"), "Content-Type": "application/json"},
    )
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code
    assert any(i["path"].startswith(path) for i in err["issues"]), err
    no_traceback(resp)
    assert web.rig.store.list_deployments() == []


def test_unknown_ids_are_404_with_json(web: Web) -> None:
    for url in (
        "/api/deployments/dep-nope",
        "/api/deployments/dep-nope/charts",
        "/api/operations/op-nope",
        "/api/operations/op-nope/events",
        "/api/services/nope",
        "/api/no-such-route",
    ):
        resp = web.client.get(url, headers=web.as_("viewer"))
        assert resp.status_code == 404, url
        assert resp.json()["error"]["code"] == "not_found"
    resp = web.client.post(
        "/api/deployments/dep-nope/rollback", json={}, headers=web.as_("deployer")
    )
    assert resp.status_code == 404


def test_oversized_body_is_413(web: Web) -> None:
    big = json.dumps({"version": "1.0.0", "pad": "x" * 200_000}).encode()
    resp = web.client.post(
        "/api/deployments",
        content=big,
        headers={**web.as_("deployer"), "Content-Type": "application/json"},
    )
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "body_too_large"

    def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 1024

    streamed = web.client.post(
        "/api/deployments",
        content=chunks(),
        headers={**web.as_("deployer"), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    assert web.rig.store.list_deployments() == []


def test_every_mutating_call_is_audited_allowed_or_not_sec4(web: Web) -> None:
    deploy(web, "1.0.0")
    web.client.post("/api/deployments", json={"version": "1.1.0"}, headers=web.as_("viewer"))
    web.client.post("/api/deployments", json={"version": "1.1.0"})
    web.client.post(
        "/api/deployments", json={"version": "1.1.0", "dry_run": True}, headers=web.as_("admin")
    )
    log = web.client.get("/api/audit", headers=web.as_("admin")).json()
    rows = [(a["actor"], a["detail"]["status"]) for a in reversed(log)]
    assert rows == [("api:dan", 202), ("api:vera", 403), ("anonymous", 401), ("api:ada", 200)]
    first = log[-1]
    assert first["action"] == "api POST /api/deployments"
    assert first["detail"]["version"] == "1.0.0"
    assert first["detail"]["operation"] == first["detail"]["deployment"]
    assert first["target"] == "staging/" + first["detail"]["deployment"]
    assert all(TOKENS["deployer"] not in json.dumps(a) for a in log)


def test_alarms_and_scaling_are_listed_mon1_iac5(web: Web) -> None:
    store, now = web.rig.store, web.rig.clock.now()
    store.save_alarm_state(
        AlarmStateRecord(
            environment="staging",
            service="web",
            alarm="HighCPUUtilization",
            state="ALARM",
            since=now,
            evaluated_at=now,
            reason="cpu 95 > 80",
        ),
        transition=AlarmHistoryRecord(
            ts=now,
            environment="staging",
            service="web",
            alarm="HighCPUUtilization",
            previous="OK",
            state="ALARM",
            reason="cpu 95 > 80",
            action="scale_out",
        ),
    )
    store.add_scaling_activity(
        ScalingActivity(
            ts=now,
            environment="staging",
            service="web",
            compute_service="web-blue",
            cause="alarm:HighCPUUtilization",
            previous=2,
            desired=3,
            status="succeeded",
            reason="cpu 95 > 80",
        )
    )
    alarms = web.client.get("/api/alarms", headers=web.as_("viewer")).json()
    assert alarms[0]["state"] == "ALARM"
    assert alarms[0]["history"][0]["previous"] == "OK"
    scaling = web.client.get("/api/scaling", headers=web.as_("viewer")).json()
    assert (scaling[0]["previous"], scaling[0]["desired"]) == (2, 3)
    page = web.client.get("/alarms", headers=web.as_("viewer"))
    assert "HighCPUUtilization" in page.text and "cpu 95 &gt; 80" in page.text


def test_metrics_export_the_delivery_figures(web: Web) -> None:
    deploy(web, "1.0.0")
    deploy(web, "2.0.0")
    text = web.client.get("/metrics").text
    assert "# TYPE deployops_deployments gauge" in text
    assert 'deployops_deployment_frequency_per_day{environment="staging",service="web"}' in text
    assert 'deployops_change_failure_rate{environment="staging",service="web"} 0.5' in text
    assert 'deployops_time_to_restore_seconds{environment="staging",service="web"}' in text
    assert 'deployops_lead_time_seconds{environment="staging",service="web"}' in text
    assert (
        'deployops_deployments{environment="staging",kind="deploy",status="rolled_back"} 1.0'
        in (text)
    )


def test_token_file_stores_hashes_and_expires(tmp_path: Path, web: Web) -> None:
    path = tmp_path / "tokens.json"
    now = web.rig.clock.now()
    token, _entry = create_token(path, name="ci", role=Role.DEPLOYER)
    old, _ = create_token(path, name="old", role=Role.VIEWER, expires=now - timedelta(seconds=1))
    text = path.read_text()
    assert token not in text and old not in text
    assert hash_token(token) in text
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    tokens = TokenFile.load(path)
    assert tokens.authenticate(token, now=now).role is Role.DEPLOYER
    web.ctx.tokens = tokens
    ok = web.client.get("/api/whoami", headers={"Authorization": f"Bearer {token}"})
    assert ok.json() == {"name": "ci", "role": "deployer"}
    expired = web.client.get("/api/whoami", headers={"Authorization": f"Bearer {old}"})
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "token_expired"
    # replacing a name keeps one entry
    create_token(path, name="ci", role=Role.ADMIN)
    assert [e.name for e in TokenFile.load(path).entries] == ["old", "ci"]


def test_dashboard_pages_by_role(web: Web, deployed: str) -> None:
    assert web.client.get("/", follow_redirects=False).status_code == 303
    login = web.client.post("/login", data={"token": "wrong", "next": "/"}, follow_redirects=False)
    assert login.status_code == 401
    web.client.cookies.set("deployops_token", TOKENS["viewer"])
    page = web.client.get("/")
    assert page.status_code == 200
    assert 'id="deploy-button"' not in page.text
    assert deployed in page.text
    # the cookie alone does not make a post (a cross-site form could send it)
    csrf = web.client.post("/api/deployments", json={"version": "1.1.0"})
    assert csrf.status_code == 403
    web.client.cookies.set("deployops_token", TOKENS["deployer"])
    assert 'id="deploy-button"' in web.client.get("/").text
    detail = web.client.get(f"/deployments/{deployed}")
    assert 'id="rollback-preview"' in detail.text
    assert all(f'data-phase="{p}"' in detail.text for p in ("prepare", "deploy", "switch"))
    fragment = web.client.get(f"/fragments/deployments/{deployed}")
    assert fragment.status_code == 200 and "<html" not in fragment.text
    web.client.cookies.clear()
