"""Component fault: a Slack receiver that hangs (accepts, never answers) with the channel's
default 10 s timeout and 3 attempts, during a blue-green deploy under a loopback load, on the
local platform (real HAProxy, real replicas, a real TCP receiver standing for Slack).

Before, the deploy command's exit waited for every retry (about 30 s per notice). Now
(MON-2, DEP-7) it exits within ``notifications.redelivery.exit_wait`` of its work, the notices
it could not deliver are kept in the state store as pending and said on stderr, and once the
receiver is back, ``deployops serve`` delivers each exactly once and marks it delivered.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Project, running_project
from tests.e2e.test_controller_e2e import serving
from tests.faults.component_support import (
    hanging_receiver,
    http_receiver,
    long_fault,
    loopback_load,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

EXIT_WAIT_S = 2.0
# What the deploy may take beyond the same deploy with no notifications: the exit wait, and
# a busy 2-core machine's variation between two deploys.
BOUND_S = EXIT_WAIT_S + 8.0
HOOK = "/hooks/team"


def _notify_to(p: Project, url: str) -> None:
    doc = yaml.safe_load(p.path.read_text())
    doc["notifications"] = {
        # the channel's default timeout (10 s) and retries (3): the case that stalled exits
        "channels": {"team": {"type": "slack", "webhook_url": url}},
        "routes": {"info": ["team"], "warning": ["team"], "critical": ["team"]},
        "redelivery": {"exit_wait": f"{EXIT_WAIT_S:g}s", "initial_backoff": "1s"},
    }
    p.path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _notices(p: Project, *flags: str) -> list[dict[str, Any]]:
    out = p.cli("-o", "json", "notifications", "list", *flags)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@long_fault
def test_dep7_hanging_receiver_the_deploy_exits_within_the_bound_and_serve_delivers_once() -> None:
    with running_project() as p:
        t0 = time.monotonic()
        base = p.cli("deploy", "--version", "1.0.0", timeout=300)
        base_s = time.monotonic() - t0
        assert base.returncode == 0, base.stderr[-2000:]
        with hanging_receiver() as receiver:
            port = int(receiver.rsplit(":", 1)[1])
            _notify_to(p, receiver + HOOK)
            with loopback_load(p.config.services["web"].port) as load:
                t0 = time.monotonic()
                dep = p.cli("deploy", "--version", "1.0.1", timeout=300)
                dep_s = time.monotonic() - t0
            pending = _notices(p)
        print(
            f"\nhanging receiver: deploy {dep_s:.1f}s (exit {dep.returncode}), without "
            f"notifier {base_s:.1f}s; requests {load.sent}, failed {load.failed}; "
            f"{len(pending)} notices kept"
        )
        assert dep.returncode == 0, dep.stderr[-2000:]
        assert load.failed == 0, load.errors
        assert dep_s <= base_s + BOUND_S, (dep_s, base_s)
        # What the user was told, and what was kept: every notice of the deploy, pending.
        assert "not delivered yet on team: kept in the state store" in dep.stderr
        assert pending and {n["status"] for n in pending} == {"pending"}
        assert {n["channel"] for n in pending} == {"team"}
        titles = sorted(n["title"] for n in pending)
        assert any("1.0.1" in t for t in titles), titles
        health = p.cli("-o", "json", "health")
        assert json.loads(health.stdout)["undelivered_notifications"] == len(pending)

        # The receiver comes back where it was; the controller delivers each notice once.
        with http_receiver(port) as rx, serving(p):
            took = wait_until(
                lambda: not _notices(p),
                timeout_s=60,
                what="every kept notice delivered by deployops serve",
            )
            time.sleep(1.5)  # a further redelivery round: nothing may be sent twice
            bodies = [json.dumps(b) for b in rx.bodies(HOOK)]
        print(f"{len(bodies)} notices received, {took:.1f}s after serve started")
        delivered = _notices(p, "--all")
        assert sorted(n["title"] for n in delivered) == titles
        assert {n["status"] for n in delivered} == {"delivered"}
        # (serve sends notices of its own too, e.g. a drill that is due: only the kept ones
        # are counted)
        kept_bodies = [b for b in bodies if any(t in b for t in titles)]
        assert len(kept_bodies) == len(titles), kept_bodies
        for title in titles:
            assert sum(title in b for b in bodies) == 1, (title, bodies)
