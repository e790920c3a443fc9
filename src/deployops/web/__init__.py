"""The controller's HTTP face (FastAPI): ``/healthz`` and Prometheus ``/metrics``."""

from deployops.web.app import create_app, render_metrics

__all__ = ["create_app", "render_metrics"]
