"""A canary deployment under load on the real local platform, for the e2e tests and the bench.

:func:`canary_under_load` brings a project up (HAProxy, replicas, metrics collector), deploys
the baseline version plainly, then deploys the candidate with ``--strategy canary`` through
the CLI while a bounded loopback load runs against the production listener, and reports what
happened: the exit status, the step that failed, the share of all requests the candidate
answered, the judge's decisions.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from deployops.drivers.local.load import Load
from tests.e2e.conftest import FAST_RULES, running_project

__all__ = ["CANARY_VERSIONS", "CanaryRun", "canary_under_load"]

# The sample service's fault switches per version (tests/e2e/conftest.py has the others).
CANARY_VERSIONS: dict[str, dict[str, str]] = {
    "1.0.0": {},
    "1.0.1": {},  # the same as 1.0.0: a healthy release
    "1.3.0": {"FAULT_ERROR_RATE": "0.03"},  # a noisy baseline: 3 % of requests fail
    "1.3.1": {"FAULT_ERROR_RATE": "0.03"},  # ... and a release as noisy as it
    "8.3.0": {"FAULT_ERROR_RATE": "0.03"},  # a release failing 3 % over a clean baseline
    # latency: 4 ms plus an exponential tail of mean 4 ms; then twice that (P99 doubles)
    "1.4.0": {"FAULT_LATENCY_MS": "4", "FAULT_LATENCY_JITTER_MS": "4"},
    "1.4.1": {"FAULT_LATENCY_MS": "4", "FAULT_LATENCY_JITTER_MS": "4"},
    "8.4.0": {"FAULT_LATENCY_MS": "8", "FAULT_LATENCY_JITTER_MS": "8"},
}


@dataclass
class CanaryRun:
    exit_code: int
    output: str
    total_requests: int
    candidate_requests: int
    failed_step: str = ""
    failed_percent: int | None = None
    bakes_passed: list[int] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # how long the canary deploy took

    @property
    def candidate_share(self) -> float:
        return self.candidate_requests / self.total_requests if self.total_requests else 0.0


def canary_under_load(
    baseline: str,
    candidate: str,
    *,
    steps: tuple[int, ...] = (5, 25, 50, 100),
    bake_s: float = 3.0,
    workers: int = 6,
    analysis: dict[str, Any] | None = None,
    timeout_s: float = 240.0,
) -> CanaryRun:
    """Deploy ``baseline``, then ``candidate`` as a canary under load; what happened."""
    rollback: dict[str, Any] = dict(FAST_RULES)
    if analysis is not None:
        rollback["analysis"] = analysis
    with running_project(
        version_environment=CANARY_VERSIONS,
        canary={"steps": list(steps), "bake": bake_s},
        blue_green={
            "health_timeout": 20,
            "stability_window": 2,
            "sample_interval": 0.5,
            "smoke_checks": [{"path": "/health", "status": 200}],
        },
        rollback=rollback,
    ) as project:
        url = f"http://127.0.0.1:{project.config.services['web'].port}/"
        # load during the first deploy too: its rules are judged on real requests, not on
        # synthetic ones sent after a wait for data
        with Load(url, workers=2, max_seconds=timeout_s):
            first = project.cli("deploy", "--version", baseline)
        assert first.returncode == 0, first.stdout + first.stderr
        began = time.monotonic()
        with Load(url, workers=workers, max_seconds=timeout_s) as load:
            out = project.cli(
                "deploy", "--version", candidate, "--strategy", "canary", timeout=timeout_s
            )
        result = load.result
        took = time.monotonic() - began
        dep = next(d for d in project.deployments() if d["version"] == candidate)
        shown = json.loads(project.cli("-o", "json", "deployments", "show", str(dep["id"])).stdout)
        run = CanaryRun(
            exit_code=out.returncode,
            output=out.stdout + out.stderr,
            total_requests=result.total,
            candidate_requests=result.reached(candidate),
            decisions=list(shown.get("decisions", [])),
            seconds=round(took, 1),
        )
        for s in shown.get("steps", []):
            if s["name"] == "Bake" and s["status"] == "succeeded":
                run.bakes_passed.append(int(s["params"]["percent"]))
            if s["status"] == "failed":
                run.failed_step = str(s["name"])
                pct = s.get("params", {}).get("percent")
                run.failed_percent = int(pct) if pct is not None else None
        return run
