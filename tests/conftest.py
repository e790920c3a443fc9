"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pg import PgCluster


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's AWS or deployops settings (monkeypatch restores them)."""
    for key in list(os.environ):
        if key.startswith(("AWS_", "DEPLOYOPS_")):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One real PostgreSQL 15 for the whole session (started on first use; see tests/pg.py).
    Tests that need isolation create their own database with ``pg_cluster.create_database``."""
    cluster = PgCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
