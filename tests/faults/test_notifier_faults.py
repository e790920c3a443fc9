"""Component faults: the notification receivers down (connection refused) or hanging (accepts
and never answers), during a blue-green deploy and a manual rollback under a loopback load, on
the local platform (real HAProxy, real replicas, a real TCP receiver standing for Slack).

A notifier never blocks or fails a deploy or a rollback (MON-2, DEP-7): the command exits 0
(the rollback command 3, its "rolled back") within a bound however the receiver behaves,
every request of the load is answered, and each failed delivery is said on stderr.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Project, running_project
from tests.faults.component_support import hanging_receiver, loopback_load, refused_port

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


@pytest.mark.parametrize("mode", ["down", "hanging"])
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
        # The user is told: each failed attempt and the final failure are said on stderr.
        assert "notification trigger on team failed" in dep.stderr + rb.stderr
