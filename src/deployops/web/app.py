"""FastAPI app of ``deployops serve``: ``/healthz`` and Prometheus ``/metrics``.

``/healthz`` answers 200 while the controller's loop ticks, 503 once it has not ticked for
``stall_after_s`` (a wedged loop is a failed controller, whatever the process table says).
``/metrics`` is the Prometheus text format (0.0.4): the controller's loop timings, every
alarm's state, deployments by outcome, jobs by status and scaling activities.

    app = create_app(controller=controller, store=store, clock=clock)
    uvicorn.run(app, host="127.0.0.1", port=8089)
"""

from __future__ import annotations

from collections import Counter

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from deployops.clock import Clock
from deployops.engine.controller import Controller
from deployops.store import StateStore

__all__ = ["create_app", "render_metrics"]

_ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def render_metrics(controller: Controller, store: StateStore) -> str:
    """The Prometheus exposition of the controller and the store."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    family(
        "deployops_controller_loop_duration_seconds",
        "summary",
        "Time spent in each controller loop.",
    )
    for loop, st in sorted(controller.stats.items()):
        out.append(
            f"deployops_controller_loop_duration_seconds_sum{_labels(loop=loop)} "
            f"{st.seconds_total:.6f}"
        )
        out.append(
            f"deployops_controller_loop_duration_seconds_count{_labels(loop=loop)} {st.runs}"
        )
    family("deployops_controller_loop_errors_total", "counter", "Loop runs that raised.")
    for loop, st in sorted(controller.stats.items()):
        out.append(f"deployops_controller_loop_errors_total{_labels(loop=loop)} {st.errors}")
    family(
        "deployops_controller_loop_last_run_timestamp_seconds",
        "gauge",
        "When each loop last ran (Unix time).",
    )
    for loop, st in sorted(controller.stats.items()):
        if st.last_run is not None:
            out.append(
                f"deployops_controller_loop_last_run_timestamp_seconds{_labels(loop=loop)} "
                f"{st.last_run:.3f}"
            )

    family("deployops_alarm_state", "gauge", "1 for the state each alarm is in (MON-1).")
    for a in store.alarm_states():
        for state in _ALARM_STATES:
            labels = _labels(
                environment=a.environment, service=a.service, alarm=a.alarm, state=state
            )
            out.append(f"deployops_alarm_state{labels} {1 if a.state == state else 0}")

    family("deployops_deployments", "gauge", "Deployments in the store by kind and outcome.")
    for (env, kind, status), n in sorted(store.deployment_counts().items()):
        out.append(f"deployops_deployments{_labels(environment=env, kind=kind, status=status)} {n}")

    family("deployops_jobs", "gauge", "Deferred jobs by status.")
    for status, n in sorted(Counter(j.status for j in store.jobs()).items()):
        out.append(f"deployops_jobs{_labels(status=status)} {n}")

    family("deployops_scaling_activities", "gauge", "Recent scaling activities (IAC-5).")
    counts = Counter(
        (a.environment, a.service, a.status) for a in store.scaling_activities(limit=10_000)
    )
    for (env, service, status), n in sorted(counts.items()):
        labels = _labels(environment=env, service=service, status=status)
        out.append(f"deployops_scaling_activities{labels} {n}")
    return "\n".join(out) + "\n"


def create_app(
    *, controller: Controller, store: StateStore, clock: Clock, stall_after_s: float = 30.0
) -> FastAPI:
    app = FastAPI(title="deployops controller", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> Response:
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

    @app.get("/metrics")
    def metrics() -> Response:
        return PlainTextResponse(render_metrics(controller, store), media_type=CONTENT_TYPE)

    return app
