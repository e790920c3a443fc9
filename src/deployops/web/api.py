"""The JSON API under ``/api`` (OpenAPI at ``/api/openapi.json``).

Reads need the ``viewer`` role, deploy / rollback / resume need ``deployer``, the audit log
needs ``admin`` (SEC-4). Mutating calls answer 202 with an operation id at once and run in the
controller; their progress streams as server-sent events from
``/api/operations/{id}/events``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from deployops.clock import Clock
from deployops.domain.access import Role
from deployops.errors import ConfigError, ConfigIssue, NotFoundError
from deployops.store import StateStore
from deployops.store import queries as q
from deployops.web.auth import COOKIE, AuthError, Principal, TokenFile
from deployops.web.operations import Operations

if TYPE_CHECKING:
    from deployops.config.project import ProjectConfig
    from deployops.engine.controller import Controller

__all__ = ["WebContext", "build_router", "service_status"]

_STREAM_POLL_S = 0.25


@dataclass
class WebContext:
    """What the API and the dashboard read from: one environment's store, project and
    operations. ``controller`` is the running loop (None when only the API is served)."""

    project: ProjectConfig
    environment: str
    store: StateStore
    clock: Clock
    tokens: TokenFile
    operations: Operations
    controller: Controller | None = None

    def principal(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        token: str | None = None
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise AuthError(401, "unauthenticated", "use 'Authorization: Bearer <token>'")
            token = value.strip()
        else:
            token = request.cookies.get(COOKIE)
            if (
                token
                and request.method not in ("GET", "HEAD")
                and not request.headers.get("x-deployops-request")
            ):
                # A cookie rides along on cross-site posts; a custom header cannot (CSRF).
                raise AuthError(
                    403, "forbidden", "send the X-Deployops-Request header with the cookie"
                )
        principal = self.tokens.authenticate(token, now=self.clock.now())
        request.state.principal = principal
        return principal


def _ctx(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


def requires(role: Role) -> Callable[[Request], Principal]:
    """A dependency: the caller's principal, if its role allows ``role``."""

    def dep(request: Request) -> Principal:
        principal = _ctx(request).principal(request)
        TokenFile.authorize(principal, role)
        return principal

    return dep


Viewer = Annotated[Principal, Depends(requires(Role.VIEWER))]
Deployer = Annotated[Principal, Depends(requires(Role.DEPLOYER))]
Admin = Annotated[Principal, Depends(requires(Role.ADMIN))]
Ctx = Annotated[WebContext, Depends(_ctx)]


# ---------------------------------------------------------------------- request bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeployBody(_Body):
    service: str | None = Field(
        default=None, max_length=128, description="Service (default: the only one)."
    )
    version: str = Field(min_length=1, max_length=128, description="Semantic version.")
    strategy: Literal["blue-green", "rolling", "canary", "linear"] | None = None
    force: bool = Field(default=False, description="Deploy even if already live.")
    dry_run: bool = Field(default=False, description="Return the plan; change nothing.")


class RollbackBody(_Body):
    dry_run: bool = Field(default=False, description="Return the checks and the plan only.")
    force: bool = Field(default=False, description="Override a blocking check.")
    reason: str = Field(default="", max_length=500, description="Why (required with force).")


class ResumeBody(_Body):
    pass


class OperationOut(BaseModel):
    id: str
    kind: str
    service: str
    actor: str
    status: str
    phase: str
    deployment_id: str | None
    reverts: str | None
    error: str
    created_at: str
    finished_at: str | None
    links: dict[str, str] = {}


# ---------------------------------------------------------------------- read model
def service_status(ctx: WebContext, name: str) -> dict[str, Any]:
    """Live colour, version, replicas and health of a service, plus its lock and last
    deployment."""
    from deployops.engine.deploy import lock_key
    from deployops.engine.events import null_reporter

    cfg = ctx.project.service(name)
    out: dict[str, Any] = {
        "name": name,
        "environment": ctx.environment,
        "strategy": cfg.strategy,
        "colour": None,
        "target_group": None,
        "version": None,
        "task_definition": None,
        "replicas": None,
        "health": "unknown",
        "error": "",
    }
    try:
        with ctx.operations.engine.deployer(null_reporter) as deployer:
            live = deployer.live_state(name)
    except Exception as exc:  # noqa: BLE001 - a platform that is down is a status, not a 500
        out["error"] = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
    else:
        svc = live.service
        out.update(
            colour=live.colour,
            target_group=live.target_group,
            version=live.version or None,
            task_definition=live.task_definition or None,
        )
        if svc is not None:
            out["replicas"] = {
                "desired": svc.desired,
                "running": svc.running,
                "healthy": svc.healthy,
            }
            if svc.desired == 0:
                out["health"] = "stopped"
            elif svc.healthy >= svc.desired:
                out["health"] = "healthy"
            elif svc.healthy > 0:
                out["health"] = "degraded"
            else:
                out["health"] = "down"
    held = ctx.store.get_lock(lock_key(ctx.environment, name))
    out["lock"] = (
        {
            "owner": held.owner,
            "reason": held.reason,
            "since": held.acquired_at.isoformat(),
            "deployment_id": held.deployment_id,
        }
        if held
        else None
    )
    last = ctx.store.list_deployments(environment=ctx.environment, service=name, limit=1)
    out["last_deployment"] = q.deployment_json(last[0]) if last else None
    return out


def _op_json(ctx: WebContext, op_id: str) -> dict[str, Any]:
    """An operation as the runner stored it (whoever started it), with links to follow it."""
    rec = ctx.store.get_operation(op_id)
    if rec is None:
        raise NotFoundError(f"no operation {op_id!r}", path="path.operation_id")
    deployment = rec.kind in ("deploy", "rollback")
    body: dict[str, Any] = {
        "id": rec.id,
        "kind": rec.kind,
        "service": rec.target,
        "actor": rec.owner,
        "status": rec.status,
        "phase": rec.phase,
        "deployment_id": rec.id if deployment else None,
        "reverts": rec.reverts,
        "error": rec.error,
        "created_at": rec.created_at.isoformat(),
        "finished_at": rec.finished_at.isoformat() if rec.finished_at else None,
        "links": {
            "self": f"/api/operations/{rec.id}",
            "events": f"/api/operations/{rec.id}/events",
        },
    }
    if deployment:
        body["links"]["deployment"] = f"/api/deployments/{rec.id}"
        body["links"]["page"] = f"/deployments/{rec.id}"
    return body


def _field_paths(exc: ConfigError, mapping: dict[str, str]) -> ConfigError:
    """The engine names CLI flags (``--version``); the API names body fields."""
    issues = [
        ConfigIssue(path=mapping.get(i.path, i.path), message=i.message, file=None)
        for i in exc.issues
    ]
    out = type(exc)(issues, hint=exc.hint)
    return out


_DEPLOY_FIELDS = {"--version": "body.version", "--strategy": "body.strategy"}


def _sse(event_id: int | str, kind: str, data: Any) -> bytes:
    text = json.dumps(data, default=str)
    return f"id: {event_id}\nevent: {kind}\ndata: {text}\n\n".encode()


# ---------------------------------------------------------------------- routes
def build_router() -> APIRouter:
    r = APIRouter(prefix="/api")

    @r.get("/whoami", summary="The caller's token name and role")
    def whoami(principal: Viewer) -> dict[str, str]:
        return {"name": principal.name, "role": principal.role.value}

    @r.get("/services", summary="Services with their live colour, version, replicas and health")
    async def services(ctx: Ctx, _p: Viewer) -> list[dict[str, Any]]:
        return [await run_in_threadpool(service_status, ctx, name) for name in ctx.project.services]

    @r.get("/services/{name}", summary="One service's live status")
    async def service(name: str, ctx: Ctx, _p: Viewer) -> dict[str, Any]:
        if name not in ctx.project.services:
            raise NotFoundError(
                f"no service {name!r}; defined: {', '.join(ctx.project.services)}",
                path="path.name",
            )
        return await run_in_threadpool(service_status, ctx, name)

    @r.get("/deployments", summary="Deployments, newest first")
    def deployments(
        ctx: Ctx,
        _p: Viewer,
        service: Annotated[str | None, Query(max_length=128)] = None,
        status: Annotated[
            Literal["running", "succeeded", "failed", "rolled_back", "refused"] | None, Query()
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[dict[str, Any]]:
        return q.list_deployments(
            ctx.store,
            environment=ctx.environment,
            service=service,
            status=[status] if status else None,
            limit=limit,
        )

    @r.get("/deployments/{deployment_id}", summary="A deployment with steps, events, decisions")
    def deployment(deployment_id: str, ctx: Ctx, _p: Viewer) -> dict[str, Any]:
        return q.deployment_detail(ctx.store, deployment_id)

    @r.get(
        "/deployments/{deployment_id}/decisions",
        summary="The rule decisions of a deployment with their evidence",
    )
    def decisions(deployment_id: str, ctx: Ctx, _p: Viewer) -> list[dict[str, Any]]:
        rec = ctx.store.require_deployment(deployment_id)
        return [q.decision_json(d) for d in ctx.store.decisions(deployment_id=rec.id)]

    @r.get(
        "/deployments/{deployment_id}/charts",
        summary="Per rule: the metric against its threshold, window, baseline and decisions",
    )
    def charts(deployment_id: str, ctx: Ctx, _p: Viewer) -> list[dict[str, Any]]:
        from deployops.web.charts import rule_charts

        return rule_charts(q.deployment_detail(ctx.store, deployment_id))

    @r.post(
        "/deployments",
        status_code=202,
        summary="Deploy a version (202 with the operation; 200 with the plan for a dry run)",
        responses={409: {"description": "another operation holds the lock"}},
    )
    async def deploy(
        body: DeployBody, request: Request, ctx: Ctx, principal: Deployer
    ) -> JSONResponse:
        from deployops.engine.deploy import DeployRequest
        from deployops.engine.events import null_reporter

        request.state.audit = {"service": body.service, "version": body.version}
        service = body.service or ctx.project.default_service()
        if service is None or service not in ctx.project.services:
            raise ConfigError(
                f"unknown service {body.service!r}; defined: {', '.join(ctx.project.services)}"
                if body.service
                else "several services: name one",
                path="body.service",
            )
        req = DeployRequest(
            service=service,
            version=body.version,
            strategy=body.strategy,
            force=body.force,
            owner=principal.actor,
        )
        if body.dry_run:

            def plan() -> dict[str, Any]:
                with ctx.operations.engine.deployer(null_reporter) as deployer:
                    try:
                        p, live = deployer.plan(req)
                    except ConfigError as exc:
                        raise _field_paths(exc, _DEPLOY_FIELDS) from None
                return {
                    "dry_run": True,
                    "environment": ctx.environment,
                    "service": service,
                    "from": live.version or None,
                    "to": body.version,
                    "strategy": p.strategy,
                    "steps": p.to_json(),
                    "notes": list(p.notes),
                }

            return JSONResponse(await run_in_threadpool(plan), status_code=200)
        try:
            op = await run_in_threadpool(ctx.operations.deploy, req)
        except ConfigError as exc:
            raise _field_paths(exc, _DEPLOY_FIELDS) from None
        request.state.audit.update(operation=op.id, deployment=op.id)
        return JSONResponse(_op_json(ctx, op.id), status_code=202)

    @r.post(
        "/deployments/{deployment_id}/rollback",
        status_code=202,
        summary="Roll back a deployment (dry_run: the checks and the plan as a preview)",
        responses={409: {"description": "another operation holds the lock"}},
    )
    async def rollback(
        deployment_id: str,
        body: RollbackBody,
        request: Request,
        ctx: Ctx,
        principal: Deployer,
    ) -> JSONResponse:
        rec = ctx.store.require_deployment(deployment_id)
        request.state.audit = {"deployment": rec.id, "dry_run": body.dry_run}
        if body.force and not body.reason.strip():
            raise ConfigError("force needs a reason", path="body.reason")
        if body.dry_run:
            rb = await run_in_threadpool(ctx.operations.preview_rollback, rec.id)
            return JSONResponse({"dry_run": True, **rb.to_json()}, status_code=200)
        try:
            op = await run_in_threadpool(
                lambda: ctx.operations.rollback(
                    rec.id,
                    actor=principal.actor,
                    service=rec.service,
                    force=body.force,
                    reason=body.reason,
                )
            )
        except ConfigError as exc:
            # a blocking check: the body's force and reason override it
            raise _field_paths(exc, {"rollback": "body.force"}) from None
        request.state.audit.update(operation=op.id)
        return JSONResponse(_op_json(ctx, op.id), status_code=202)

    @r.post(
        "/deployments/{deployment_id}/resume",
        status_code=202,
        summary="Continue an interrupted deployment from its first unfinished step",
    )
    async def resume(
        deployment_id: str,
        request: Request,
        ctx: Ctx,
        principal: Deployer,
        body: ResumeBody | None = None,
    ) -> JSONResponse:
        _ = body  # no fields: an unknown one is refused (422)
        rec = ctx.store.require_deployment(deployment_id)
        request.state.audit = {"deployment": rec.id}
        if rec.status != "running":
            raise ConfigError(
                f"{rec.id} is {rec.status}, not interrupted; nothing to resume",
                path="path.deployment_id",
            )
        op = await run_in_threadpool(
            lambda: ctx.operations.resume(rec.id, actor=principal.actor, service=rec.service)
        )
        request.state.audit.update(operation=op.id)
        return JSONResponse(_op_json(ctx, op.id), status_code=202)

    @r.get("/operations", summary="Operations of the environment, newest first")
    def operations(
        ctx: Ctx,
        _p: Viewer,
        status: Annotated[
            Literal["running", "succeeded", "failed", "rolled_back"] | None, Query()
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[OperationOut]:
        rows = ctx.store.list_operations(
            environment=ctx.environment, status=[status] if status else None, limit=limit
        )
        return [OperationOut(**_op_json(ctx, r.id)) for r in rows]

    @r.get("/operations/{operation_id}", summary="One operation")
    def operation(operation_id: str, ctx: Ctx, _p: Viewer) -> OperationOut:
        return OperationOut(**_op_json(ctx, operation_id))

    @r.get(
        "/operations/{operation_id}/events",
        summary="The operation's progress as server-sent events, until it ends",
        response_class=StreamingResponse,
    )
    def operation_events(operation_id: str, request: Request, ctx: Ctx, _p: Viewer) -> Any:
        _op_json(ctx, operation_id)  # 404 for an unknown id, before the stream starts

        async def stream() -> AsyncIterator[bytes]:
            since = 0
            while True:
                rec = await run_in_threadpool(ctx.store.get_operation, operation_id)
                worker = ctx.operations.get(operation_id)
                # ended: the runner recorded the outcome and this process's worker is done
                finished = rec is not None and rec.status != "running"
                finished = finished and (worker is None or worker.done.is_set())
                events = await run_in_threadpool(
                    ctx.store.events, deployment_id=operation_id, since_id=since
                )
                for e in events:
                    since = e.id
                    yield _sse(e.id, e.kind, q.event_json(e))
                if finished:
                    yield _sse(f"end-{operation_id}", "operation", _op_json(ctx, operation_id))
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(_STREAM_POLL_S)

        return StreamingResponse(stream(), media_type="text/event-stream")

    @r.get(
        "/events",
        summary="Every new event of the environment as server-sent events (for live pages)",
        response_class=StreamingResponse,
    )
    def events(
        request: Request,
        ctx: Ctx,
        _p: Viewer,
        since: Annotated[int | None, Query(ge=0, description="Last event id seen.")] = None,
        max_seconds: Annotated[float, Query(gt=0, le=3600)] = 300.0,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> Any:
        start = since
        if start is None and last_event_id and last_event_id.isdigit():
            start = int(last_event_id)
        if start is None:
            start = ctx.store.last_event_id()

        async def stream() -> AsyncIterator[bytes]:
            cursor = start or 0
            # The connection's lifetime is wall time on the event loop, not the domain clock.
            loop = asyncio.get_running_loop()
            until = loop.time() + max_seconds
            yield b"retry: 1000\n\n"
            while loop.time() < until:
                batch = await run_in_threadpool(ctx.store.events, since_id=cursor, limit=500)
                for e in batch:
                    cursor = e.id
                    if e.environment in ("", ctx.environment):
                        yield _sse(e.id, "event", q.event_json(e))
                if await request.is_disconnected():
                    return
                await asyncio.sleep(_STREAM_POLL_S)

        return StreamingResponse(stream(), media_type="text/event-stream")

    @r.get("/alarms", summary="Every alarm's state and its history")
    def alarms(
        ctx: Ctx, _p: Viewer, history: Annotated[int, Query(ge=0, le=1000)] = 50
    ) -> list[dict[str, Any]]:
        return q.alarms_view(ctx.store, environment=ctx.environment, history_limit=history)

    @r.get("/scaling", summary="Scaling activities, oldest first")
    def scaling(
        ctx: Ctx,
        _p: Viewer,
        service: Annotated[str | None, Query(max_length=128)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        rows = ctx.store.scaling_activities(
            environment=ctx.environment, service=service, limit=limit
        )
        return [q.scaling_json(a) for a in rows]

    @r.get("/incidents", summary="Incident reports of automatic rollbacks, newest first")
    def incidents(
        ctx: Ctx, _p: Viewer, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> list[dict[str, Any]]:
        return q.incident_reports(ctx.store, environment=ctx.environment, limit=limit)

    @r.get(
        "/delivery",
        summary="Deployment frequency, change-failure rate, time to restore and lead time",
    )
    def delivery(
        ctx: Ctx, _p: Viewer, days: Annotated[int, Query(ge=1, le=365)] = 14
    ) -> dict[str, Any]:
        return q.delivery_figures(
            ctx.store, environment=ctx.environment, now=ctx.clock.now(), days=days
        )

    @r.get("/audit", summary="The audit log, newest first (admin)")
    def audit(
        ctx: Ctx, _p: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[dict[str, Any]]:
        return [q.audit_json(a) for a in ctx.store.audit_log(limit=limit)]

    return r
