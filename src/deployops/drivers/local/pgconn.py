"""``DatabaseConnections`` for the local platform (MON-1): connections in use as a percentage
of PostgreSQL's ``max_connections``, read from ``pg_stat_activity`` through psycopg.

It is a live reading, not a history: a query answers one datapoint stamped inside the newest
period of the window, which is what a one-period alarm judges. A database that cannot be
reached is a failed measurement (a value), never an exception.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

import psycopg

from deployops.clock import Clock
from deployops.domain.model import Datapoint, Measurement, MetricName, MetricQuery

__all__ = ["PostgresConnectionsMetrics"]

_SQL = (
    "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), "
    "current_setting('max_connections')::int"
)


class PostgresConnectionsMetrics:
    name: ClassVar[str] = "postgres-connections"
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, dsn: str, clock: Clock, timeout_s: float = 5.0) -> None:
        self._dsn = dsn  # may carry credentials: never put it in a message
        self._clock = clock
        self._timeout_s = timeout_s

    def read(self) -> tuple[int, int]:
        """(client connections, max_connections). Raises ``psycopg.Error``."""
        with psycopg.connect(self._dsn, connect_timeout=max(1, int(self._timeout_s))) as conn:
            row = conn.execute(_SQL).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def query(self, query: MetricQuery) -> Measurement:
        if query.metric is not MetricName.DB_CONNECTIONS:
            return Measurement(query=query, error=f"{self.name} only measures DatabaseConnections")
        try:
            used, limit = self.read()
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return Measurement(
                query=query,
                error=f"cannot read pg_stat_activity: {type(exc).__name__}: {first}",
            )
        stamp = max(query.start, query.end - timedelta(seconds=1))
        point = Datapoint(timestamp=stamp, value=100.0 * used / max(1, limit), samples=used)
        return Measurement(query=query, datapoints=(point,))
