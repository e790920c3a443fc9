"""The rotation runner on the in-memory store and a virtual clock (SEC-3): the controller's
loop rotates what is due by the periods, a store that goes down mid-rotation leaves the old
value current, and the JWT / encryption-key values keep what verification and decryption need.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from deployops.clock import VirtualClock
from deployops.config.secrets import SecretsConfig
from deployops.domain.rotation import Promote
from deployops.domain.secrets import Stage
from deployops.drivers.memory_secrets import MemorySecretStore
from deployops.engine.rotation import Rotator
from deployops.errors import DeployopsError, RotationError
from deployops.secret import Secret
from deployops.store import StateStore

MANAGED = SecretsConfig().managed_secrets()


def _rig(tmp_path: Path) -> tuple[Rotator, MemorySecretStore, VirtualClock, StateStore]:
    clock = VirtualClock()
    secrets = MemorySecretStore(clock=clock)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    rot = Rotator(
        environment="production",
        store=store,
        secrets=secrets,
        clock=clock,
        owner="test@host:1",
        settings={
            "jwt-secret": {"token_lifetime": "3600"},
            "encryption-keys": {"keep_versions": "3"},
        },
    )
    return rot, secrets, clock, store


def test_sec3_controller_rotates_what_is_due_by_the_periods(tmp_path: Path) -> None:
    rot, _secrets, clock, store = _rig(tmp_path)
    first = rot.rotate_due(MANAGED)
    assert sorted(r.secret for r in first) == sorted(s.name for s in MANAGED)  # never rotated
    assert rot.rotate_due(MANAGED) == []
    clock.advance(timedelta(days=90).total_seconds())
    assert [r.secret for r in rot.rotate_due(MANAGED)] == ["database-password"]
    clock.advance(timedelta(days=90).total_seconds())  # day 180
    assert sorted(r.secret for r in rot.rotate_due(MANAGED)) == ["api-keys", "database-password"]
    clock.advance(timedelta(days=90).total_seconds())  # day 270
    assert [r.secret for r in rot.rotate_due(MANAGED)] == ["database-password"]
    clock.advance(timedelta(days=89).total_seconds())  # day 359: nothing
    assert rot.rotate_due(MANAGED) == []
    clock.advance(timedelta(days=6).total_seconds())  # day 365: API keys (360), JWT, keys
    assert sorted(r.secret for r in rot.rotate_due(MANAGED)) == [
        "api-keys",
        "database-password",
        "encryption-keys",
        "jwt-secret",
    ]
    rows = {r.name: r for r in rot.statuses(MANAGED)}
    assert rows["api-keys"].next_due is not None
    assert not any(r.due for r in rows.values())
    store.close()


def test_sec3_store_down_mid_rotation_leaves_old_value_current(tmp_path: Path) -> None:
    rot, secrets, _clock, store = _rig(tmp_path)
    api = next(s for s in MANAGED if s.name == "api-keys")
    rot.rotate(api, actor="a")
    before = secrets.get("api-keys")

    def down_at_promote(self: Rotator, step: object) -> None:
        secrets.down = True
        raise RotationError("store unreachable")

    rot.handlers = {**rot.handlers, Promote: down_at_promote}
    with pytest.raises(DeployopsError):
        rot.rotate(api, actor="a")
    secrets.down = False
    assert secrets.get("api-keys") == before
    [running] = [r for r in store.rotations() if r.status == "running"]
    op = store.get_operation(running.id)
    assert op is not None and op.status == "running" and op.kind == "rotate"
    # the revert itself could not reach the store: resume finishes putting it back once the
    # store is back (the revert steps are stored; the failed Promote is not tried again)
    rot.handlers = {
        **Rotator(environment="", store=store, secrets=secrets, clock=rot.clock, owner="").handlers
    }
    with pytest.raises(RotationError, match="previous value is current again"):
        rot.resume(running.id, actor="a", owner_alive=lambda _o: False)
    done = store.get_rotation(running.id)
    assert done is not None and done.status == "reverted"
    assert secrets.get("api-keys") == before
    assert sum(Stage.CURRENT in v.stages for v in secrets.describe("api-keys").versions) == 1
    with pytest.raises(DeployopsError):
        secrets.get_version("api-keys", stage=Stage.PENDING)
    steps = [s.name for s in store.steps_for(running.id)]
    assert steps[:4] == ["CreatePending", "SetOnTarget", "TestPending", "Promote"]
    assert steps[4:] == ["RevertPromote", "RevertTarget", "DiscardPending", "VerifyRestored"]
    assert store.get_lock("production/secret:api-keys") is None
    store.close()


def test_sec3_jwt_keeps_previous_key_and_encryption_keeps_old_keys(tmp_path: Path) -> None:
    rot, secrets, clock, store = _rig(tmp_path)
    jwt = next(s for s in MANAGED if s.name == "jwt-secret")
    enc = next(s for s in MANAGED if s.name == "encryption-keys")
    rot.rotate(jwt, actor="a")
    old_key = json.loads(secrets.get("jwt-secret").reveal())["key"]
    rot.rotate(jwt, actor="a")
    doc = json.loads(secrets.get("jwt-secret").reveal())
    assert doc["key"] != old_key
    [prev] = doc["previous"]
    assert prev["key"] == old_key
    assert prev["verify_until"] == (clock.now() + timedelta(hours=1)).isoformat()

    kids = []
    for _ in range(4):
        kids.append(rot.rotate(enc, actor="a").version_id)
    ring = json.loads(secrets.get("encryption-keys").reveal())
    assert ring["primary"] == kids[-1]
    assert list(ring["keys"]) == kids[-3:]  # keep_versions: 3
    store.close()


class _Killed(BaseException):
    """Stands in for kill -9 at a step boundary (nothing after it runs)."""


def test_sec3_controller_resumes_a_rotation_whose_owner_died(tmp_path: Path) -> None:
    rot, secrets, _clock, store = _rig(tmp_path)
    api = next(s for s in MANAGED if s.name == "api-keys")
    rot.rotate(api, actor="a")

    def crash(kind: str, seq: int, where: str) -> None:
        if (kind, seq, where) == ("rotate", 3, "before-outcome"):
            raise _Killed

    rot.crash_point = crash
    with pytest.raises(_Killed):
        rot.rotate(api, actor="a")
    rot.crash_point = None
    [op] = store.list_operations(kinds=["rotate"], status=["running"])
    # a live owner's rotation is left alone; once its owner is gone the controller resumes it
    store.acquire_lock(
        "production/secret:api-keys", owner="other@host:9", reason="rotate", now=rot.clock.now()
    )
    assert rot.rotate_due([api], owner_alive=lambda _o: True) == []
    store.release_lock("production/secret:api-keys", owner="other@host:9")
    [done] = rot.rotate_due([api], actor="controller", owner_alive=lambda _o: False)
    assert done.id == op.id and done.status == "completed"
    assert sum(Stage.CURRENT in v.stages for v in secrets.describe("api-keys").versions) == 1
    assert [s.status for s in store.steps_for(op.id)] == ["succeeded"] * 6
    audit = [(e.actor, e.outcome) for e in store.audit_log() if e.action == "secret.rotate"]
    assert ("controller", "ok") in audit
    store.close()


def test_sec3_a_rotation_left_running_by_an_older_version_is_resumed(tmp_path: Path) -> None:
    """Rotations once kept their steps in the rotations table only: such a running rotation
    is taken onto the runner (an operation with its done steps) and finished."""
    from deployops.store import RotationRecord

    rot, secrets, clock, store = _rig(tmp_path)
    secrets.put_pending("api-keys", Secret('{"current": "k1"}'), version_id="v" * 36)
    vid, old = "n" * 36, "v" * 36
    common = {"secret": "api-keys", "kind": "api-keys", "version_id": vid}
    plan = [
        {"type": "CreatePending", **common, "current_version_id": old, "previous_version_id": ""}
        | {"settings": []},
        {"type": "SetOnTarget", **common},
        {"type": "TestPending", **common, "current_version_id": old},
        {"type": "Promote", **common, "current_version_id": old},
        {"type": "RestartReplicas", **common, "services": [], "timeout_s": 300.0},
        {"type": "VerifyCurrent", **common, "services": []},
    ]
    store.create_rotation(
        RotationRecord(
            id="rot-20261201-000000-0001",
            environment="production",
            secret="api-keys",
            kind="api-keys",
            status="running",
            version_id=vid,
            previous_version_id=old,
            owner="gone@host:1",
            plan=plan,
            done_steps=["CreatePending"],
            started_at=clock.now(),
        )
    )
    secrets.put_pending("api-keys", Secret('{"current": "k2", "previous": "k1"}'), version_id=vid)
    done = rot.resume("rot-20261201-000000-0001", actor="a", owner_alive=lambda _o: False)
    assert done.status == "completed"
    info = secrets.describe("api-keys")
    assert info.current is not None and info.current.version_id == vid
    op = store.get_operation("rot-20261201-000000-0001")
    assert op is not None and op.kind == "rotate" and op.status == "succeeded"
    store.close()
