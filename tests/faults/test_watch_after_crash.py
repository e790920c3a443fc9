"""The watch after the switch killed mid-rollback on the real local platform (RB-2, DEP-7):
``deployops serve`` SIGKILLs itself (the runner's test-only fault point,
``DEPLOYOPS_TEST_CRASH_AT``) right before the watch's rollback switches the listener; the next
``serve`` resumes that rollback and the watch ends rolled back, with one rollback only.

About 90 s on the real clock: it runs with ``make faults`` (``DEPLOYOPS_TEST_CRASH_MATRIX=full``);
``make test`` covers the same logic on the virtual clock
(tests/unit/engine/test_watch_after.py: a restart after the decision, a rollback interrupted
and resumed).
"""

from __future__ import annotations

import os

import pytest

from tests.e2e.test_controller_e2e import Serve, platform_project, wait_for
from tests.e2e.test_watch_after_e2e import (
    BLUE_GREEN,
    DEGRADING,
    FAST_RULES,
    VERSIONS,
    Load,
    deploy,
    probe,
    prod_url,
    serving,
    show,
    watch_state,
)

# read at import: the autouse fixture clears DEPLOYOPS_* for the tests themselves
FULL = os.environ.get("DEPLOYOPS_TEST_CRASH_MATRIX") == "full"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(not FULL, reason="the full reliability suite: make faults"),
]


def test_watch_rollback_killed_mid_way_is_finished_by_the_next_serve_rb2_dep7(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``deployops serve`` is killed (SIGKILL, the reliability suite's fault point) right
    before the watch's rollback switches the listener; the next ``serve`` resumes that
    rollback at its first unfinished step and the watch ends rolled back, with one rollback
    only."""
    rollback = {**FAST_RULES, "watch_after_switch": "5m"}
    with platform_project(
        version_environment=VERSIONS, blue_green=BLUE_GREEN, rollback=rollback
    ) as (project, store):
        deploy(project, "1.0.0")
        live = deploy(project, DEGRADING)
        with Load(prod_url(project), workers=2, max_seconds=150) as _load:
            # step 5 of the redeploy is SwitchListener: die just before it acts
            monkeypatch.setenv("DEPLOYOPS_TEST_CRASH_AT", "rollback:5:before-act")
            dying = Serve(project, project.path.parent)
            monkeypatch.delenv("DEPLOYOPS_TEST_CRASH_AT")
            try:
                dying.proc.wait(timeout=150)
            finally:
                code = dying.stop()
            assert code == -9, (code, dying.stderr()[-2000:])
            assert watch_state(store, live) == "rolling_back"
            rbs = show(project, live)["rolled_back_by"]
            assert len(rbs) == 1
            assert show(project, rbs[0])["status"] == "running"  # interrupted
            assert project.prod_target_group() == "web-green"  # killed before the switch
            with serving(project):
                wait_for(
                    lambda: watch_state(store, live) == "rolled_back",
                    timeout_s=60,
                    what="the next serve to finish the watch's rollback",
                )
        rb = show(project, rbs[0])
        assert rb["status"] == "succeeded"
        assert "deploy.resumed" in [e["kind"] for e in rb["events"]]
        assert show(project, live)["rolled_back_by"] == rbs  # one rollback only
        assert project.prod_target_group() == "web-blue"
        assert probe(project) == [(200, "1.0.0")] * 20
        assert (project.path.parent / ".deployops" / "reports" / f"{live}.md").exists()
        assert project.orphans() == []
