"""The API and the dashboard over the in-memory reference platform on a virtual clock, with the
engine judging by the RB-1 rules, so a deployment (or a rollback) runs its whole plan in
milliseconds. The in-memory platform cannot show real processes or HAProxy timing: the
browser tests (tests/browser) drive ``deployops serve`` on the real local platform."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from deployops.domain.access import Role
from deployops.engine.deploy import Deployer
from deployops.engine.events import Reporter
from deployops.web import create_app
from deployops.web.api import WebContext
from deployops.web.auth import TokenFile
from tests.fixtures_local import free_port
from tests.support.memory_rig import Rig
from tests.support.rules_rig import make_rules_rig, rules_deployer

TOKENS = {
    "viewer": "tok-viewer-0123456789",
    "deployer": "tok-deployer-0123456789",
    "admin": "tok-admin-0123456789",
}


class RigEngine:
    """The web layer's Engine over the rig: a deployer per operation, reporting to it."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig

    @contextmanager
    def deployer(self, reporter: Reporter) -> Iterator[Deployer]:
        deployer = rules_deployer(self.rig)
        deployer.reporter = reporter
        yield deployer


@dataclass
class Web:
    rig: Rig
    app: FastAPI
    client: httpx.Client

    @property
    def ctx(self) -> WebContext:
        ctx: WebContext = self.app.state.ctx
        return ctx

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKENS[role]}"}

    def wait_idle(self) -> None:
        self.ctx.operations.join(timeout=30)


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    rig = make_rules_rig(tmp_path)
    tokens = TokenFile.of(
        {
            TOKENS["viewer"]: ("vera", Role.VIEWER),
            TOKENS["deployer"]: ("dan", Role.DEPLOYER),
            TOKENS["admin"]: ("ada", Role.ADMIN),
        }
    )
    app = create_app(
        controller=None,
        store=rig.store,
        clock=rig.clock,
        project=rig.project,
        environment="staging",
        tokens=tokens,
        engine=RigEngine(rig),
    )
    with serving(app) as base_url, httpx.Client(base_url=base_url, trust_env=False) as client:
        yield Web(rig=rig, app=app, client=client)
        app.state.ctx.operations.join(timeout=30)
    rig.store.close()


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` under a real uvicorn on a free loopback port, in a thread, for one test."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
