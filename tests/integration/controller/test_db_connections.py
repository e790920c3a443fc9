"""MON-1 DatabaseConnections on the local platform: connections in use as a percentage of a
real PostgreSQL's ``max_connections``, judged by the default alarm (> 80 % for 1 period)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from deployops.clock import VirtualClock
from deployops.domain.alarms import default_alarm
from deployops.domain.model import MetricName, MetricQuery, Statistic
from deployops.drivers.local.pgconn import PostgresConnectionsMetrics
from deployops.drivers.memory import MemoryCloud, MemoryTraffic
from deployops.engine.alarms import AlarmEvaluator
from deployops.store import StateStore
from tests.pg import PgCluster

pytestmark = pytest.mark.integration


@pytest.fixture
def dsn(pg_cluster: PgCluster) -> str:
    return pg_cluster.url.replace("postgresql+psycopg://", "postgresql://")


def _query(clock: VirtualClock) -> MetricQuery:
    now = clock.now()
    return MetricQuery(
        metric=MetricName.DB_CONNECTIONS,
        scope="web-blue",
        statistic=Statistic.MAXIMUM,
        start=now - timedelta(seconds=60),
        end=now,
    )


@pytest.fixture
def held() -> Iterator[list[psycopg.Connection[tuple[object, ...]]]]:
    conns: list[psycopg.Connection[tuple[object, ...]]] = []
    yield conns
    for c in conns:
        c.close()


def test_mon1_database_connections_alarm_follows_pg_stat_activity(
    dsn: str, tmp_path: Path, held: list[psycopg.Connection[tuple[object, ...]]]
) -> None:
    clock = VirtualClock()
    source = PostgresConnectionsMetrics(dsn=dsn, clock=clock)
    used, limit = source.read()
    m = source.query(_query(clock))
    assert m.ok
    assert m.datapoints[0].value == pytest.approx(100.0 * (used + 0) / limit, abs=100 / limit)

    cloud = MemoryCloud(clock=clock)
    cloud.add_service_listeners("web", 18080)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    evaluator = AlarmEvaluator(
        alarms=[default_alarm("DatabaseConnections")],
        environment="development",
        services=["web"],
        metrics=source,
        traffic=MemoryTraffic(cloud=cloud),
        store=store,
        clock=clock,
    )
    clock.advance(60)
    (r,) = evaluator.evaluate()
    assert r.state.value == "OK"
    # Open connections until more than 80 % of max_connections are in use.
    need = int(limit * 0.8) + 1 - source.read()[0]
    for _ in range(max(0, need)):
        held.append(psycopg.connect(dsn))
    clock.advance(60)
    (r,) = evaluator.evaluate()
    assert r.state.value == "ALARM"
    assert r.transition is not None
    assert r.transition.severity.value == "warning"
    for c in held:
        c.close()
    held.clear()
    clock.advance(60)
    (r,) = evaluator.evaluate()
    assert r.state.value == "OK"
    store.close()


def test_mon1_unreachable_database_is_a_failed_measurement_without_the_dsn(
    tmp_path: Path,
) -> None:
    dsn = "postgresql://watcher:s3cret-pw@127.0.0.1:9/app"
    source = PostgresConnectionsMetrics(dsn=dsn, clock=VirtualClock(), timeout_s=1)
    m = source.query(_query(VirtualClock()))
    assert not m.ok
    assert "cannot read pg_stat_activity" in m.error
    assert "s3cret-pw" not in m.error
