"""The dashboard: server-rendered pages (Jinja2) with a little JavaScript for live updates.

Pages: ``/`` services overview with the delivery figures and their trend, ``/deployments/{id}``
with the phase timeline and a chart per rollback rule, ``/alarms``, and ``/login``. Each page
subscribes to ``/api/events`` (server-sent events) and, when something changes, swaps in the
fresh fragment from ``/fragments/...`` rendered by the same templates. No build step: the chart
library is vendored into the package (``static/vendor``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from deployops.domain.access import Role
from deployops.domain.plan import step_from_json
from deployops.store import queries as q
from deployops.web.api import WebContext, service_status
from deployops.web.auth import COOKIE, AuthError, Principal
from deployops.web.charts import rule_charts

__all__ = ["STATIC_DIR", "build_pages"]

_HERE = Path(__file__).resolve().parent
STATIC_DIR = _HERE / "static"
templates = Jinja2Templates(directory=str(_HERE / "templates"))
PHASES = ("prepare", "deploy", "switch", "cleanup")


def _ctx(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


def _viewer(request: Request) -> Principal | None:
    try:
        principal = _ctx(request).principal(request)
    except AuthError:
        return None
    return principal


def _login_redirect(request: Request) -> Response:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


def timeline(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's steps grouped by phase, each with its recorded status (or pending)."""
    recorded = {s["seq"]: s for s in detail.get("steps", [])}
    phases: dict[str, dict[str, Any]] = {}
    for seq, raw in enumerate(detail.get("plan", [])):
        try:
            text = step_from_json(raw).describe()
        except (KeyError, TypeError, ValueError):
            text = str(raw.get("step", "step"))
        rec = recorded.get(seq)
        status = rec["status"] if rec else "pending"
        phase = str(raw.get("phase") or (rec or {}).get("phase") or "other")
        group = phases.setdefault(phase, {"phase": phase, "steps": [], "status": "pending"})
        group["steps"].append(
            {
                "seq": seq + 1,
                "text": text,
                "status": status,
                "started_at": rec["started_at"] if rec else None,
                "finished_at": rec["finished_at"] if rec else None,
                "error": rec["error"] if rec else "",
            }
        )
    for group in phases.values():
        states = [s["status"] for s in group["steps"]]
        if "failed" in states:
            group["status"] = "failed"
        elif all(s == "succeeded" for s in states):
            group["status"] = "succeeded"
        elif any(s in ("started", "succeeded") for s in states):
            group["status"] = "running"
    order = {p: i for i, p in enumerate(PHASES)}
    return sorted(phases.values(), key=lambda g: order.get(g["phase"], len(order)))


def _overview(ctx: WebContext) -> dict[str, Any]:
    figures = q.delivery_figures(ctx.store, environment=ctx.environment, now=ctx.clock.now())
    return {
        "services": [service_status(ctx, name) for name in ctx.project.services],
        "deployments": q.list_deployments(ctx.store, environment=ctx.environment, limit=15),
        "delivery": figures,
    }


def _detail(ctx: WebContext, deployment_id: str) -> dict[str, Any]:
    detail = q.deployment_detail(ctx.store, deployment_id)
    reports = [
        r
        for r in q.incident_reports(ctx.store, environment=None)
        if r["deployment_id"] == detail["id"]
    ]
    return {
        "d": detail,
        "timeline": timeline(detail),
        "charts": rule_charts(detail),
        "reports": reports,
    }


def build_pages() -> APIRouter:
    r = APIRouter(include_in_schema=False)

    def page(request: Request, name: str, principal: Principal, **values: Any) -> Response:
        ctx = _ctx(request)
        return templates.TemplateResponse(
            request,
            name,
            {
                "principal": principal,
                "can_deploy": principal.role.allows(Role.DEPLOYER),
                "environment": ctx.environment,
                "project": ctx.project.project,
                **values,
            },
        )

    @r.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/", error: str = "") -> Response:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"next": next if next.startswith("/") else "/", "error": error, "principal": None},
        )

    @r.post("/login")
    def login(request: Request, token: str = Form(...), next: str = Form("/")) -> Response:
        ctx = _ctx(request)
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        try:
            ctx.tokens.authenticate(token.strip(), now=ctx.clock.now())
        except AuthError as exc:
            return templates.TemplateResponse(
                request,
                "login.html",
                {"next": target, "error": exc.message, "principal": None},
                status_code=401,
            )
        resp = RedirectResponse(target, status_code=303)
        resp.set_cookie(
            COOKIE, token.strip(), httponly=True, samesite="strict", secure=False, path="/"
        )
        return resp

    @r.post("/logout")
    def logout() -> Response:
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    @r.get("/", response_class=HTMLResponse)
    async def overview(request: Request) -> Response:
        principal = _viewer(request)
        if principal is None:
            return _login_redirect(request)
        data = await run_in_threadpool(_overview, _ctx(request))
        return page(request, "overview.html", principal, **data)

    @r.get("/fragments/overview", response_class=HTMLResponse)
    async def overview_fragment(request: Request) -> Response:
        principal = _viewer(request)
        if principal is None:
            return Response(status_code=401)
        data = await run_in_threadpool(_overview, _ctx(request))
        return page(request, "_overview_body.html", principal, **data)

    @r.get("/deployments/{deployment_id}", response_class=HTMLResponse)
    async def deployment(request: Request, deployment_id: str) -> Response:
        principal = _viewer(request)
        if principal is None:
            return _login_redirect(request)
        data = await run_in_threadpool(_detail, _ctx(request), deployment_id)
        return page(request, "deployment.html", principal, **data)

    @r.get("/fragments/deployments/{deployment_id}", response_class=HTMLResponse)
    async def deployment_fragment(request: Request, deployment_id: str) -> Response:
        principal = _viewer(request)
        if principal is None:
            return Response(status_code=401)
        data = await run_in_threadpool(_detail, _ctx(request), deployment_id)
        return page(request, "_deployment_body.html", principal, **data)

    @r.get("/alarms", response_class=HTMLResponse)
    async def alarms(request: Request) -> Response:
        principal = _viewer(request)
        if principal is None:
            return _login_redirect(request)
        ctx = _ctx(request)
        rows = await run_in_threadpool(q.alarms_view, ctx.store, environment=ctx.environment)
        scaling = await run_in_threadpool(
            ctx.store.scaling_activities, environment=ctx.environment, limit=20
        )
        return page(
            request,
            "alarms.html",
            principal,
            alarms=rows,
            scaling=[q.scaling_json(a) for a in reversed(scaling)],
        )

    return r
