"""A PostgreSQL state store that cannot be reached is waited for (``state.reconnect``), with
capped backoff, before the query fails; once a whole wait has run out, later queries try once
until a connection succeeds, so an operation fails in one wait, not one per query. (The
server stopped and started mid-deploy is in tests/faults/test_component_faults.py.)"""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import create_engine

from deployops.errors import DriverError
from deployops.store import StateStore


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql+psycopg://deployops@127.0.0.1:{port}/state?connect_timeout=2"


def test_an_unreachable_postgres_is_waited_for_then_fails_with_the_wait_said() -> None:
    pauses: list[float] = []
    url = _refused_url()
    store = StateStore(engine=create_engine(url), url=url, reconnect_s=3.0, sleep=pauses.append)
    with pytest.raises(DriverError) as err:
        store.current_revision()
    assert sum(pauses) == pytest.approx(3.0)
    assert pauses[:4] == [0.1, 0.2, 0.4, 0.8] and max(pauses) <= 1.0
    assert "unreachable for 3s" in err.value.message
    assert err.value.retryable
    pauses.clear()
    with pytest.raises(DriverError):
        store.list_locks()  # already known down: one try, no second wait
    assert pauses == []
    store.close()


def test_sqlite_is_never_waited_for() -> None:
    pauses: list[float] = []
    url = "sqlite:////nonexistent-dir/for/sure/state.db"
    store = StateStore(engine=create_engine(url), url=url, reconnect_s=3.0, sleep=pauses.append)
    with pytest.raises(DriverError):
        store.list_locks()
    assert pauses == []
