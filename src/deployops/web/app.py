"""FastAPI app of ``deployops serve``: ``/healthz``, Prometheus ``/metrics``, the JSON API under
``/api`` (OpenAPI at ``/api/openapi.json``) and the dashboard.

``/healthz`` answers 200 while the controller's loop ticks, 503 once it has not ticked for
``stall_after_s`` (a wedged loop is a failed controller, whatever the process table says).
``/healthz`` and ``/metrics`` need no token (probes and scrapers; they carry no secret); the
API and the dashboard need a bearer token of the right role (``web/auth.py``).

    app = create_app(controller=controller, store=store, clock=clock)  # healthz + metrics
    app = create_app(controller=controller, store=store, clock=clock, project=project,
                     environment="production", tokens=TokenFile.load(path), engine=engine)
    uvicorn.run(app, host="127.0.0.1", port=8089)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from deployops.clock import Clock
from deployops.store import AuditRecord, StateStore
from deployops.web.auth import TokenFile
from deployops.web.errors import BodyLimit, install_error_handlers
from deployops.web.metrics import CONTENT_TYPE, metrics_registry, render_metrics_text

if TYPE_CHECKING:
    from deployops.config.project import ProjectConfig
    from deployops.engine.controller import Controller
    from deployops.web.operations import Engine

__all__ = ["MAX_BODY_BYTES", "create_app", "render_metrics"]

MAX_BODY_BYTES = 64 * 1024  # every request body the API takes is a few hundred bytes


def render_metrics(controller: Controller | None, store: StateStore, clock: Clock) -> str:
    """The Prometheus exposition of the controller and the store."""
    return render_metrics_text(metrics_registry(controller=controller, store=store, clock=clock))


def create_app(
    *,
    controller: Controller | None,
    store: StateStore,
    clock: Clock,
    stall_after_s: float = 30.0,
    project: ProjectConfig | None = None,
    environment: str | None = None,
    tokens: TokenFile | None = None,
    engine: Engine | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    app = FastAPI(
        title="deployops controller",
        description=(
            "Services, deployments with their steps and decisions, alarms, scaling and "
            "incident reports; deploy, roll back and resume as operations (202 + id, progress "
            "as server-sent events). Send 'Authorization: Bearer <token>'."
        ),
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    install_error_handlers(app)
    env = environment or (controller.environment if controller else "")
    registry = metrics_registry(controller=controller, store=store, clock=clock, environment=env)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        if controller is None:
            return JSONResponse({"status": "ok", "environment": env, "controller": None})
        last = controller.last_tick
        age = None if last is None else clock.monotonic() - last
        ok = controller.started and age is not None and age <= stall_after_s
        body = {
            "status": "ok" if ok else "stalled" if controller.started else "starting",
            "environment": controller.environment,
            # several controllers on one store: which one acts (the others stand by)
            "acting": controller.leading,
            "leader": controller.lease.leader if controller.lease else controller.worker,
            "last_tick_age_s": age,
            "loops": {name: st.runs for name, st in controller.stats.items()},
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(render_metrics_text(registry), media_type=CONTENT_TYPE)

    if project is not None and engine is not None:
        _mount(app, project, env, store, clock, tokens or TokenFile(path=None), engine, controller)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


def _mount(
    app: FastAPI,
    project: ProjectConfig,
    environment: str,
    store: StateStore,
    clock: Clock,
    tokens: TokenFile,
    engine: Engine,
    controller: Controller | None,
) -> None:
    from deployops.web.api import WebContext, build_router
    from deployops.web.dashboard import STATIC_DIR, build_pages
    from deployops.web.operations import Operations

    app.state.ctx = WebContext(
        project=project,
        environment=environment,
        store=store,
        clock=clock,
        tokens=tokens,
        operations=Operations(engine=engine, clock=clock),
        controller=controller,
    )
    app.include_router(build_router())
    app.include_router(build_pages())
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    @app.middleware("http")
    async def audit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Every mutating API call, allowed or not, goes into the audit log (SEC-4)."""
        response = await call_next(request)
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.url.path.startswith(
            "/api/"
        ):
            principal = getattr(request.state, "principal", None)
            detail = dict(getattr(request.state, "audit", {}) or {})
            detail["status"] = response.status_code
            subject = detail.get("deployment") or detail.get("service") or ""
            store.audit(
                AuditRecord(
                    ts=clock.now(),
                    actor=principal.actor if principal else "anonymous",
                    action=f"api {request.method} {request.url.path}",
                    target=f"{environment}/{subject}",
                    detail=detail,
                )
            )
        return response
