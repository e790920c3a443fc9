"""The database password rotates on a real PostgreSQL (SEC-3).

Alternating users: each rotation gives the role *not* in use a new password (``ALTER ROLE``),
logs in with it, then promotes it; the role the application used keeps its password, so the
old value stays valid while replicas move. A failing test step (here the server refuses the
other role's logins in pg_hba.conf) puts everything back: the pending value is discarded,
the role's password restored, the old value current. A rotation killed after promotion is
finished by ``resume``; at every moment exactly one value is current.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from deployops.clock import SystemClock
from deployops.domain.secrets import ManagedSecret, SecretKind, Stage
from deployops.drivers.local.encrypted import EncryptedFileSecretStore, write_key_file
from deployops.drivers.local.pgroles import PostgresRoles
from deployops.engine.rotation import Rotator
from deployops.errors import NotFoundError, RotationError
from deployops.store import StateStore
from tests.integration.secrets.pgauth import password_cluster

pytestmark = pytest.mark.integration

DB = ManagedSecret(name="database-password", kind=SecretKind.DATABASE_PASSWORD, period_days=90)


@pytest.fixture(scope="module")
def pg() -> Iterator[tuple[object, str]]:
    with password_cluster() as (cluster, admin):
        yield cluster, admin


def _login(admin: str, doc: dict[str, str]) -> bool:
    params = conninfo_to_dict(admin)
    params.update(user=doc["username"], password=doc["password"])
    try:
        with psycopg.connect(make_conninfo("", **params), connect_timeout=3) as conn:
            conn.execute("INSERT INTO items (name) VALUES ('x')")
        return True
    except psycopg.OperationalError:
        return False


def _rotator(tmp_path: Path, admin: str) -> tuple[Rotator, EncryptedFileSecretStore, StateStore]:
    if not (tmp_path / "key").exists():
        write_key_file(tmp_path / "key")
    secrets = EncryptedFileSecretStore(path=tmp_path / "s.json", key_file=tmp_path / "key")
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    rot = Rotator(
        environment="production",
        store=store,
        secrets=secrets,
        clock=SystemClock(),
        owner=f"test@host:{os.getpid()}",
        targets={DB.name: PostgresRoles(admin_dsn=admin)},
        settings={DB.name: {"users": "app_a,app_b"}},
    )
    return rot, secrets, store


def _doc(secrets: EncryptedFileSecretStore, **kw: object) -> dict[str, str]:
    return json.loads(secrets.get_version(DB.name, **kw).reveal())  # type: ignore[arg-type]


def _current_count(secrets: EncryptedFileSecretStore) -> int:
    return sum(Stage.CURRENT in v.stages for v in secrets.describe(DB.name).versions)


def test_sec3_rotation_alternates_users_and_keeps_the_old_login(
    tmp_path: Path, pg: tuple[object, str]
) -> None:
    _, admin = pg
    rot, secrets, store = _rotator(tmp_path, admin)
    first = rot.rotate(DB, actor="alice")
    assert first.status == "completed"
    one = _doc(secrets)
    assert one["username"] == "app_a" and _login(admin, one)

    second = rot.rotate(DB, actor="alice")
    two = _doc(secrets)
    assert two["username"] == "app_b" and _login(admin, two)
    assert _login(admin, one), "the previous value must keep working while replicas move"
    assert _doc(secrets, stage=Stage.PREVIOUS) == one
    assert second.previous_version_id == first.version_id

    third = rot.rotate(DB, actor="alice")
    three = _doc(secrets)
    assert three["username"] == "app_a" and _login(admin, three)
    assert not _login(admin, one), "the value two rotations back no longer logs in"
    assert _login(admin, two)
    assert third.status == "completed" and _current_count(secrets) == 1
    actions = [(e.action, e.outcome) for e in store.audit_log()]
    assert actions.count(("secret.rotate", "ok")) == 3
    store.close()


def test_sec3_failed_test_step_puts_everything_back(tmp_path: Path, pg: tuple[object, str]) -> None:
    cluster, admin = pg
    rot, secrets, store = _rotator(tmp_path, admin)
    rot.rotate(DB, actor="alice")  # app_a current
    rot.rotate(DB, actor="alice")  # app_b current, app_a previous
    current, previous = _doc(secrets), _doc(secrets, stage=Stage.PREVIOUS)
    before = secrets.describe(DB.name)
    hba = cluster.data / "pg_hba.conf"  # type: ignore[attr-defined]
    text = hba.read_text()
    # the next rotation moves app_a: the server now refuses its logins, so the test step fails
    hba.write_text(
        text.replace("host all all", "host all app_a 127.0.0.1/32 reject\nhost all all", 1)
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
    try:
        with pytest.raises(RotationError, match="TestPending") as info:
            rot.rotate(DB, actor="alice")
    finally:
        hba.write_text(text)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
    assert "previous value is current again" in str(info.value)
    assert _doc(secrets) == current
    assert _doc(secrets, stage=Stage.PREVIOUS) == previous
    with pytest.raises(NotFoundError):
        secrets.get_version(DB.name, stage=Stage.PENDING)
    after = secrets.describe(DB.name)
    assert {v.version_id: v.stages for v in after.versions if v.stages} == {
        v.version_id: v.stages for v in before.versions if v.stages
    }
    # app_a's password was put back: the previous value logs in again, and the current one
    assert _login(admin, previous) and _login(admin, current)
    [failed] = [r for r in store.rotations() if r.status == "reverted"]
    assert failed.error.startswith("TestPending")
    assert current["password"] not in failed.error
    store.close()


def test_sec3_kill_9_after_promote_resume_completes(tmp_path: Path, pg: tuple[object, str]) -> None:
    """A rotation process killed right after promotion; resume finishes it."""
    _, admin = pg
    rot, secrets, store = _rotator(tmp_path, admin)
    rot.rotate(DB, actor="alice")
    store.close()
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from tests.integration.secrets.test_rotation_postgres import _rotator, DB
        from pathlib import Path
        from deployops.engine.rotation import Rotator
        rot, secrets, store = _rotator(Path({str(tmp_path)!r}), {admin!r})
        original = Rotator._promote
        def promote_then_die(self, step):
            original(self, step)
            os.kill(os.getpid(), 9)
        rot.handlers = {{**rot.handlers}}
        from deployops.domain.rotation import Promote
        rot.handlers[Promote] = promote_then_die
        rot.owner = "test@" + __import__("socket").gethostname() + ":" + str(os.getpid())
        rot.rotate(DB, actor="alice")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    rot, secrets, store = _rotator(tmp_path, admin)
    [running] = store.rotations(status="running")
    assert running.done_steps == ["CreatePending", "SetOnTarget", "TestPending"]
    assert _current_count(secrets) == 1  # the new value is current, exactly one
    from deployops.wiring import owner_alive

    done = rot.resume(running.id, actor="bob", owner_alive=owner_alive)
    assert done.status == "completed"
    assert _current_count(secrets) == 1
    assert _doc(secrets)["username"] == "app_b" and _login(admin, _doc(secrets))
    assert store.get_lock(f"production/secret:{DB.name}") is None
    store.close()
