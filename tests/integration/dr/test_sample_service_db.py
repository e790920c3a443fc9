"""The sample service's database part against a real PostgreSQL: items written through
``POST /items`` are read back, ``/health`` reports the database, and without ``DB_HOST`` the
service is what it always was (no ``/items``, no database in ``/health``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures_local import SAMPLE_SERVICE, LocalPlatformHandle, free_port
from tests.pg import PgCluster

pytestmark = pytest.mark.integration


def _start(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "FAULT_"))}
    full.update(env, PORT=str(port), APP_VERSION="1.0.0")
    proc = subprocess.Popen(
        [sys.executable, str(SAMPLE_SERVICE / "app.py")],
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            httpx.get(base + "/metrics", timeout=0.5)
        except httpx.TransportError:
            return False
        return True

    LocalPlatformHandle.wait_until(up, timeout_s=15, what="sample service listening")
    return proc, base


@pytest.fixture
def service() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        p.kill()
        p.wait(timeout=10)
        if p.stderr:
            p.stderr.close()


def _db_env(pg: PgCluster, name: str, **extra: str) -> dict[str, str]:
    return {
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(pg.port),
        "DB_NAME": name,
        "DB_USER": pg.user,
        "DB_PASSWORD": "s3cret-not-shown",
        **extra,
    }


def test_items_are_written_and_read_back_and_health_reports_database(
    pg_cluster: PgCluster, service: list[subprocess.Popen[bytes]]
) -> None:
    pg_cluster.create_database("sample_rw")
    proc, base = _start(_db_env(pg_cluster, "sample_rw"))
    service.append(proc)

    health = httpx.get(base + "/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["database"] == "ok"

    ids = []
    for i in range(3):
        r = httpx.post(base + "/items", json={"body": f"marker-{i}"}, timeout=5)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    assert ids == sorted(ids)

    listed = httpx.get(base + "/items", timeout=5).json()
    assert [i["body"] for i in listed["items"]] == ["marker-0", "marker-1", "marker-2"]
    after = httpx.get(base + f"/items?after={ids[0]}&limit=1", timeout=5).json()
    assert [i["id"] for i in after["items"]] == [ids[1]]
    one = httpx.get(base + f"/items/{ids[2]}", timeout=5)
    assert one.json()["body"] == "marker-2"
    assert httpx.get(base + "/items/999999", timeout=5).status_code == 404
    assert httpx.post(base + "/items", json={"nobody": 1}, timeout=5).status_code == 400


def test_health_is_503_when_the_database_is_unreachable_and_password_never_shown(
    service: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    env = {
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(free_port()),  # nothing listens there
        "DB_NAME": "app",
        "DB_USER": "app",
        "DB_PASSWORD": "s3cret-not-shown",
    }
    proc, base = _start(env)
    service.append(proc)
    health = httpx.get(base + "/health", timeout=10)
    assert health.status_code == 503
    assert health.json()["database"] == "unreachable"
    write = httpx.post(base + "/items", json={"body": "x"}, timeout=10)
    assert write.status_code == 503
    assert "s3cret" not in write.text and "s3cret" not in health.text
    proc.kill()
    proc.wait(timeout=10)
    assert proc.stderr is not None
    assert b"s3cret" not in proc.stderr.read()


def test_without_db_host_the_service_has_no_database(
    service: list[subprocess.Popen[bytes]],
) -> None:
    proc, base = _start({})
    service.append(proc)
    health = httpx.get(base + "/health", timeout=5)
    assert health.status_code == 200
    assert "database" not in health.json()
    assert httpx.get(base + "/items", timeout=5).status_code == 404
    assert httpx.post(base + "/items", json={"body": "x"}, timeout=5).status_code == 404
    assert httpx.get(base + "/", timeout=5).json()["version"] == "1.0.0"
