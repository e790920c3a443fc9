"""Component faults: the notification receivers down (connection refused) or hanging (accepts
and never answers), during a blue-green deploy and a manual rollback under a loopback load, on
the local platform (real HAProxy, real replicas, a real TCP receiver standing for Slack).

A notifier never blocks or fails a deploy or a rollback (MON-2, DEP-7): the command exits 0
(the rollback command 3, its "rolled back") within a bound however the receiver behaves,
every request of the load is answered, and each failed delivery is said on stderr.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Project, running_project
from tests.faults.component_support import (
    hanging_receiver,
    long_fault,
    loopback_load,
    refused_port,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

# What a deploy or rollback may take beyond the same command with no notifications at all.
NOTIFY_BOUND_S = 15.0


def _notify_to(p: Project, url: str) -> None:
    doc = yaml.safe_load(p.path.read_text())
    doc["notifications"] = {
        "channels": {"team": {"type": "slack", "webhook_url": url, "timeout": "2s"}},
        "routes": {"info": ["team"], "warning": ["team"], "critical": ["team"]},
    }
    p.path.write_text(yaml.safe_dump(doc, sort_keys=False))


@contextmanager
def _receiver(mode: str) -> Iterator[str]:
    if mode == "hanging":
        with hanging_receiver() as base:
            yield base + "/hooks/team"
    else:
        yield f"http://127.0.0.1:{refused_port()}/hooks/team"


def _timed(p: Project, *args: str) -> tuple[Any, float]:
    t0 = time.monotonic()
    out = p.cli(*args, timeout=300)
    return out, time.monotonic() - t0


# `make test` runs the receiver that is down; the hanging one (and its redelivery, in
# test_notice_redelivery.py) runs under `make faults`.
@pytest.mark.parametrize("mode", ["down", pytest.param("hanging", marks=long_fault)])
def test_a_receiver_down_or_hanging_never_stalls_a_deploy_or_a_rollback(mode: str) -> None:
    with running_project() as p:
        base, base_s = _timed(p, "deploy", "--version", "1.0.0")
        assert base.returncode == 0, base.stderr[-2000:]
        with _receiver(mode) as url:
            _notify_to(p, url)
            with loopback_load(p.config.services["web"].port) as load:
                dep, dep_s = _timed(p, "deploy", "--version", "1.0.1")
                target = p.deployments()[0]["id"]
                rb, rb_s = _timed(p, "rollback", target)
        print(
            f"\nnotifier {mode}: deploy {dep_s:.1f}s (exit {dep.returncode}), rollback "
            f"{rb_s:.1f}s (exit {rb.returncode}), first deploy without notifier {base_s:.1f}s; "
            f"requests {load.sent}, failed {load.failed}"
        )
        assert dep.returncode == 0, dep.stderr[-2000:]
        assert rb.returncode == 3, rb.stderr[-2000:]  # the rollback command's "rolled back"
        assert load.failed == 0, load.errors
        assert dep_s <= base_s + NOTIFY_BOUND_S, (dep_s, base_s)
        assert rb_s <= base_s + NOTIFY_BOUND_S, (rb_s, base_s)
        # The user is told: a failed delivery, or one still under way at exit, is said on
        # stderr (and the notice kept for `deployops serve`).
        told = dep.stderr + rb.stderr
        assert "notification trigger on team failed" in told or "not delivered yet" in told


@long_fault
@pytest.mark.parametrize("mode", ["down", "hanging"])
def test_pagerduty_email_and_slack_down_or_hanging_never_stall_an_automatic_rollback(
    mode: str,
) -> None:
    """A release whose every request fails (5.0.0) is rolled back automatically after the
    switch (a critical notice) while Slack, PagerDuty and the SMTP server are all down
    (refused) or all hanging (accept, never answer), each with its default 10 s timeout. The
    rollback is not held up (its command exits within ``exit_wait`` + 10 s of the same
    rollback without notifications), the load sees no more failures than then (those of the
    bad release before the rollback), the user is told on stderr, and the critical notice is
    kept for each of the three channels, with no secret."""
    health_only = {"path": "/health", "status": 200}  # so the bad release reaches the switch
    bg = {"health_timeout": 20, "stability_window": 4, "sample_interval": 0.5}
    with running_project(blue_green={**bg, "smoke_checks": [health_only]}) as p:
        port = p.config.services["web"].port
        assert p.cli("deploy", "--version", "1.0.0", timeout=300).returncode == 0
        with loopback_load(port) as base_load:
            base, base_s = _timed(p, "deploy", "--version", "5.0.0")
        assert base.returncode == 3, base.stderr[-2000:]
        (p.path.parent / "config").mkdir(exist_ok=True)
        (p.path.parent / "config" / ".env.local").write_text("PAGERDUTY_KEY=R0UT1NG-fault-key\n")
        with _receiver(mode) as slack, _receiver(mode) as pd, _receiver(mode) as smtp:
            smtp_port = int(smtp.split("/")[2].rsplit(":", 1)[1])
            doc = yaml.safe_load(p.path.read_text())
            doc["notifications"] = {
                "channels": {
                    "team": {"type": "slack", "webhook_url": slack},
                    "oncall": {
                        "type": "email",
                        "smtp_host": "127.0.0.1",
                        "smtp_port": smtp_port,
                        "from": "deployops@example.com",
                        "to": ["oncall@example.com"],
                    },
                    "pager": {
                        "type": "pagerduty",
                        "routing_key": "secret://pagerduty-key",
                        "events_url": pd.replace("/hooks/team", "/v2/enqueue"),
                    },
                },
                "routes": {"critical": ["team", "oncall", "pager"], "warning": ["team"]},
                "redelivery": {"exit_wait": "2s"},
            }
            p.path.write_text(yaml.safe_dump(doc, sort_keys=False))
            with loopback_load(port) as load:
                dep, dep_s = _timed(p, "deploy", "--version", "5.0.0")
            kept = p.cli("-o", "json", "notifications", "list")
        print(
            f"\nSlack, PagerDuty and SMTP {mode}: rolled back in {dep_s:.1f}s (exit "
            f"{dep.returncode}), without notifier {base_s:.1f}s; requests {load.sent}, failed "
            f"{load.failed} (without notifier {base_load.failed} of {base_load.sent})"
        )
        assert dep.returncode == 3, dep.stderr[-2000:]
        assert dep_s <= base_s + 2.0 + 10.0, (dep_s, base_s)
        assert load.failed <= base_load.failed * 1.5 + 20, (load.failed, base_load.failed)
        assert "not delivered yet" in dep.stderr
        rows = json.loads(kept.stdout)
        critical = {r["channel"] for r in rows if r["notice"]["severity"] == "critical"}
        assert critical == {"team", "oncall", "pager"}, rows
        assert {r["status"] for r in rows} == {"pending"}
        assert "R0UT1NG-fault-key" not in kept.stdout + dep.stderr + dep.stdout
