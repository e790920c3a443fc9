"""JSON error bodies of the API: a code, a message, and for bad input the field paths.

    {"error": {"status": 422, "code": "invalid_request", "message": "...",
               "issues": [{"path": "body.version", "message": "Field required"}]}}

No response ever carries a traceback or a stack: unexpected exceptions are logged on the
controller and answered 500 with their type only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deployops.errors import ConfigError, DeployopsError, LockHeldError, NotFoundError
from deployops.web.auth import AuthError

__all__ = ["BodyLimit", "error_body", "install_error_handlers"]

log = logging.getLogger(__name__)


def error_body(
    status: int,
    code: str,
    message: str,
    *,
    issues: Sequence[dict[str, str]] = (),
    hint: str | None = None,
    **extra: Any,
) -> JSONResponse:
    err: dict[str, Any] = {"status": status, "code": code, "message": message}
    if issues:
        err["issues"] = list(issues)
    if hint:
        err["hint"] = hint
    err.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": err}, status_code=status, headers=headers)


def _path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    issues = []
    malformed = False
    for e in exc.errors():
        kind = str(e.get("type", ""))
        if kind == "json_invalid":
            malformed = True
        message = str(e.get("msg", "invalid"))
        if kind == "extra_forbidden":
            message = "unknown field: remove it (see /api/openapi.json for the fields)"
        issues.append({"path": _path(e.get("loc", ())), "message": message, "type": kind})
    if malformed:
        return error_body(
            400, "malformed_json", "the request body is not valid JSON", issues=issues
        )
    return error_body(422, "invalid_request", "the request has invalid fields", issues=issues)


def _http(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
    return error_body(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))


def _auth(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)
    return error_body(exc.status, exc.code, exc.message)


def _deployops(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DeployopsError)
    if isinstance(exc, LockHeldError):
        return error_body(
            409,
            "lock_held",
            exc.message,
            hint=exc.hint,
            holder={"owner": exc.owner, "reason": exc.reason, "since": exc.since},
        )
    if isinstance(exc, NotFoundError):
        return error_body(
            404,
            "not_found",
            exc.message,
            issues=[{"path": i.path, "message": i.message} for i in exc.issues],
            hint=exc.hint,
        )
    if isinstance(exc, ConfigError):
        return error_body(
            422,
            "refused",
            exc.message,
            issues=[{"path": i.path, "message": i.message} for i in exc.issues],
            hint=exc.hint,
        )
    return error_body(500, "operation_failed", exc.message, hint=exc.hint)


def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_body(
        500, "internal_error", f"internal error ({type(exc).__name__}); see the controller's log"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(AuthError, _auth)
    app.add_exception_handler(DeployopsError, _deployops)
    app.add_exception_handler(Exception, _unexpected)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or as they stream
    (a chunked body has no length up front)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(scope, receive, send)
                    return
        # No (or a small) Content-Length: read the body here, up to the limit, and replay it.
        # Bodies the API takes are small, so holding one in memory costs nothing.
        messages: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_body(
            413,
            "body_too_large",
            f"the request body is larger than {self.max_bytes} bytes",
            hint="send only the documented fields",
        )
        await response(scope, receive, send)
