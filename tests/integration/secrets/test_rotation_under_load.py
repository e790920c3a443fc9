"""The database password rotates while replicas serve under load: 0 failed requests (SEC-3).

Real parts: PostgreSQL checking SCRAM passwords, the local platform (HAProxy, supervised
replicas that log in with DB_USER / DB_PASSWORD resolved from the encrypted store when they
start), and load through the production listener. The rotation gives the other role a new
password, tests it, promotes it, then replaces the replicas rolling (never below 100 %
healthy); the old role keeps working until the last replica has moved, so no request fails.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from deployops.clock import SystemClock
from deployops.config.project import load_project
from deployops.domain.model import TaskDefinitionSpec
from deployops.drivers.local import control
from deployops.drivers.local.client import DaemonClient
from deployops.drivers.local.compute import LocalCompute
from deployops.drivers.local.encrypted import write_key_file
from deployops.drivers.local.load import Load
from deployops.drivers.local.paths import LocalPaths
from deployops.drivers.local.traffic import HaproxyTraffic
from deployops.store import StateStore
from deployops.wiring import build_rotator
from tests.fixtures_local import ENV, FAST_HEALTH, LocalPlatformHandle, write_project
from tests.integration.secrets.pgauth import password_cluster

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

HERE = Path(__file__).resolve().parent


@pytest.fixture
def db_project() -> Iterator[tuple[Path, str]]:
    with password_cluster() as (_cluster, admin):
        root = Path(tempfile.mkdtemp(prefix="dops-"))
        try:
            path = write_project(root, command=[sys.executable, "db_app.py"], working_dir=str(HERE))
            doc = yaml.safe_load(path.read_text())
            doc["secrets"] = {
                "stores": {ENV: {"type": "encrypted-file"}},
                "managed": {
                    "database-password": {"database": {"dsn": admin, "users": ["app_a", "app_b"]}}
                },
            }
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
            write_key_file(root / ".deployops" / "secrets" / f"{ENV}.key")
            yield path, admin
        finally:
            shutil.rmtree(root, ignore_errors=True)


def test_sec3_database_password_rotates_under_load_with_zero_failed_requests(
    db_project: tuple[Path, str],
) -> None:
    path, admin = db_project
    project = load_project(path)
    clock = SystemClock()
    store = StateStore.open(project.state_url())
    db = project.secrets.managed_secret("database-password")
    assert db is not None
    # the first value (no replicas yet): role app_a
    build_rotator(project, ENV, store=store, clock=clock, owner="seed").rotate(db[0], actor="ops")

    control.up(project, ENV, clock=clock)
    paths = LocalPaths.of(project, ENV)
    compute = LocalCompute(client=DaemonClient(paths, ENV), clock=clock)
    traffic = HaproxyTraffic(client=DaemonClient(paths, ENV), clock=clock)
    try:
        params = conninfo_to_dict(admin)
        spec = TaskDefinitionSpec(
            family="web",
            version="1.0.0",
            port=0,
            command=(sys.executable, "db_app.py"),
            working_dir=str(HERE),
            environment=(
                ("DB_HOST", "127.0.0.1"),
                ("DB_NAME", "app"),
                ("DB_PORT", str(params["port"])),
            ),
            secrets=(
                ("DB_PASSWORD", "secret://database-password#password"),
                ("DB_USER", "secret://database-password#username"),
            ),
            health_check=replace(FAST_HEALTH),
        )
        td = compute.register_task_definition(spec)
        traffic.create_target_group("web-blue", health_check=FAST_HEALTH)
        compute.create_service(
            "web-blue", task_definition=td.ref, desired_count=2, target_group="web-blue"
        )

        def healthy() -> bool:
            # in service means HAProxy sends it requests (its own ``rise`` checks passed), as
            # a deploy's wait requires: the supervisor's probe alone passes earlier
            svc = compute.describe_service("web-blue")
            group = traffic.describe_target_group("web-blue")
            return (
                svc is not None
                and svc.healthy == 2
                and group is not None
                and group.healthy_count == 2
            )

        LocalPlatformHandle.wait_until(healthy, timeout_s=30, what="two replicas in service")
        traffic.switch_listener("web-prod", "web-blue")
        url = f"http://127.0.0.1:{project.services['web'].port}/"

        rotator = build_rotator(
            project, ENV, store=store, clock=clock, owner="rotator", compute=compute
        )
        rotator.restart_timeout_s = 60
        with Load(url, workers=4, max_seconds=120) as load:
            LocalPlatformHandle.wait_until(
                lambda: load.snapshot()[0] > 50, timeout_s=20, what="load flowing"
            )
            rec = rotator.rotate(db[0], actor="ops")
            LocalPlatformHandle.wait_until(
                lambda: load.snapshot()[2].get("app_b", 0) > 50, timeout_s=20, what="new role"
            )
        result = load.result
        assert rec.status == "completed"
        assert result.failed == 0, (result.by_status, result.errors[:5])
        assert result.by_version.get("app_a", 0) > 0 and result.by_version.get("app_b", 0) > 0
        svc = compute.describe_service("web-blue")
        assert svc is not None and svc.healthy == 2
        # every running replica is on the new revision and serves as app_b
        assert all(t.task_definition == svc.task_definition for t in svc.tasks if t.healthy)
        print(
            f"rotation under load: {result.total} requests, {result.failed} failed, "
            f"by role {result.by_version}, p99 {result.percentile(99):.0f} ms"
        )
    finally:
        compute.close()
        traffic.close()
        report = control.down(project, ENV, clock=clock)
        store.close()
        assert report["killed_leftovers"] == [], report
