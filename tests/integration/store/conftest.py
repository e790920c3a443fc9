"""The ``store`` fixture: every test in this folder runs on SQLite AND on a real PostgreSQL.

Each test gets a fresh, migrated database: a new SQLite file, or a new PostgreSQL database
copied from a migrated template (``CREATE DATABASE ... TEMPLATE``), so tests never share rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from deployops.store import StateStore
from pg import PgCluster

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PgCluster) -> str:
    """A database migrated once, the template of every per-test database."""
    url = pg_cluster.create_database("deployops_template")
    StateStore.open(url).close()
    return "deployops_template"


def _new_pg_database(cluster: PgCluster, template: str | None) -> str:
    name = f"t{next(_counter)}"
    with psycopg.connect(
        host="127.0.0.1", port=cluster.port, user=cluster.user, dbname="postgres", autocommit=True
    ) as conn:
        if template:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        else:
            conn.execute(f'CREATE DATABASE "{name}"')
    return cluster.url_for(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty (unmigrated) database on the backend under test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return _new_pg_database(cluster, None)


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh migrated database on the backend under test."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
        StateStore.open(url).close()
        return url
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    template: str = request.getfixturevalue("pg_template")
    return _new_pg_database(cluster, template)


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], StateStore]]:
    """Opens more stores on the same database (another process's view); all closed after."""
    opened: list[StateStore] = []

    def _open() -> StateStore:
        s = StateStore.open(store_url)
        opened.append(s)
        return s

    yield _open
    for s in opened:
        s.close()


@pytest.fixture
def store(open_store: Callable[[], StateStore]) -> StateStore:
    return open_store()
