"""The controller's HTTP face (FastAPI): ``/healthz``, Prometheus ``/metrics``, the JSON API
under ``/api`` and the dashboard."""

from __future__ import annotations

from typing import Any

from deployops.web.app import create_app, render_metrics

__all__ = ["create_app", "render_metrics", "run_server"]


def run_server(app: Any, *, host: str, port: int) -> None:
    """Serve ``app`` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning")
