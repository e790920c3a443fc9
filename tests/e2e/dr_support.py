"""Shared by the DR end-to-end tests: a running project whose sample service uses the
application's PostgreSQL on the local platform."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Project, running_project
from tests.fixtures_local import FAST_RULES, free_port

__all__ = ["db_project", "point_service_at_db", "start_db_and_deploy"]


def _with_db_port(p: Project, **extra: Any) -> None:
    doc = yaml.safe_load(p.path.read_text())
    doc["backups"] = {"database": {"port": free_port()}}
    doc.update(extra)
    p.path.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture
def db_project() -> Iterator[Project]:
    with running_project(
        # the database part of the sample service needs psycopg: this interpreter has it
        command=[sys.executable, "app.py"],
        # the drills judge recovery, not the release: a quiet service deploys without waiting
        # for synthetic traffic to judge the rollback rules
        rollback={**FAST_RULES, "insufficient_data": {"action": "accept"}},
        blue_green={
            "health_timeout": 20,
            "stability_window": 1,
            "sample_interval": 0.5,
            "smoke_checks": [{"path": "/health", "status": 200}],
        },
    ) as p:
        _with_db_port(p)
        try:
            yield p
        finally:
            p.cli("db", "stop")


def point_service_at_db(p: Project) -> None:
    """The application's settings (what a team writes in deployops.yaml)."""
    status = json.loads(p.cli("-o", "json", "db", "status").stdout)
    primary = next(i for i in status["instances"] if i["primary"])
    password = (p.config.state_dir / "local" / "development" / "db" / "app-password").read_text()
    doc = yaml.safe_load(p.path.read_text())
    doc["services"]["web"]["environment"] = {
        "DB_HOST": primary["host"],
        "DB_PORT": str(primary["port"]),
        "DB_NAME": "app",
        "DB_USER": "app",
        "DB_PASSWORD": password.strip(),
    }
    p.path.write_text(yaml.safe_dump(doc, sort_keys=False))


def start_db_and_deploy(p: Project) -> None:
    started = p.cli("db", "start")
    assert started.returncode == 0, started.stderr
    point_service_at_db(p)
    deployed = p.cli("deploy", "--version", "1.0.0")
    assert deployed.returncode == 0, deployed.stderr
