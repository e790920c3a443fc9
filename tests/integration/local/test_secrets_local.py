"""Secret references of a task definition are resolved when a replica starts (SEC-1), like
ECS's ``valueFrom``: the value reaches the replica's environment and nothing else."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from deployops.domain.model import TaskState
from deployops.store import StateStore
from tests.fixtures_local import FAST_HEALTH, LocalPlatformHandle

pytestmark = pytest.mark.integration

VALUE = "s3cr3t-Value-never-shown-4711"


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set before the platform starts: the daemon inherits it, as from CI's secret injection."""
    monkeypatch.setenv("DEPLOYOPS_SECRET_DATABASE_PASSWORD", VALUE)


def test_secret_reaches_the_replica_and_nowhere_else_sec1(
    secret_env: None, local_platform: LocalPlatformHandle
) -> None:
    p = local_platform
    spec = replace(p.spec("1.0.0"), secrets=(("DB_PASSWORD", "secret://database-password"),))
    td = p.compute.register_task_definition(spec)
    p.traffic.create_target_group("web-blue", health_check=FAST_HEALTH)
    p.compute.create_service(
        "web-blue", task_definition=td.ref, desired_count=1, target_group="web-blue"
    )

    def running() -> bool:
        svc = p.compute.describe_service("web-blue")
        return svc is not None and svc.healthy == 1

    p.wait_until(running, what="one healthy replica")
    svc = p.compute.describe_service("web-blue")
    assert svc is not None
    (task,) = [t for t in svc.tasks if t.state is TaskState.RUNNING]
    assert psutil.Process(task.pid).environ()["DB_PASSWORD"] == VALUE
    # nowhere else: platform state, logs, HAProxy config, stored events, status output
    for path in Path(p.paths.root).rglob("*"):
        if path.is_file() and not path.is_socket():
            assert VALUE not in path.read_text(errors="replace"), path
    store = StateStore.open(p.project.state_url())
    assert all(VALUE not in e.message + str(e.data) for e in store.events())


def test_unresolvable_secret_fails_the_task_naming_the_secret_sec1(
    local_platform: LocalPlatformHandle,
) -> None:
    p = local_platform
    spec = replace(p.spec("1.0.0"), secrets=(("API_KEY", "secret://api-keys"),))
    td = p.compute.register_task_definition(spec)
    p.traffic.create_target_group("web-blue", health_check=FAST_HEALTH)
    p.compute.create_service(
        "web-blue", task_definition=td.ref, desired_count=1, target_group="web-blue"
    )

    def failed() -> bool:
        svc = p.compute.describe_service("web-blue")
        return svc is not None and any("api-keys" in t.last_error for t in svc.tasks)

    p.wait_until(failed, what="a task failing on the missing secret")
    svc = p.compute.describe_service("web-blue")
    assert svc is not None
    assert svc.healthy == 0
    error = next(t.last_error for t in svc.tasks if "api-keys" in t.last_error)
    assert "API_KEY" in error
    assert "cannot be resolved" in error
