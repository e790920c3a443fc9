"""Contract for the ``Compute`` and ``Traffic`` ports, run on every driver.

A handle (``tests/contract/conftest.py``) gives ``compute``, ``traffic``, ``spec(version,
**env)`` and ``wait_until``; names follow the blue/green convention: target groups
``web-blue``/``web-green``, listeners ``web-prod``/``web-test``, compute services
``web-blue``/``web-green``. Run against the in-memory and the local drivers.
"""

from __future__ import annotations

import pytest

from deployops.domain.model import TargetState, TaskState
from deployops.errors import DriverError, NotFoundError, UnsupportedError
from deployops.ports import Compute, Traffic
from tests.contract.conftest import ContractPlatform as LocalPlatformHandle
from tests.fixtures_local import FAST_HEALTH

pytestmark = pytest.mark.integration


def test_drivers_satisfy_the_ports(platform_under_test: LocalPlatformHandle) -> None:
    assert isinstance(platform_under_test.compute, Compute)
    assert isinstance(platform_under_test.traffic, Traffic)
    assert platform_under_test.compute.capabilities
    assert platform_under_test.traffic.capabilities


def test_task_definition_revisions_are_idempotent(platform_under_test: LocalPlatformHandle) -> None:
    """Same spec as the latest -> same revision (a resumed deploy re-registers safely)."""
    p = platform_under_test
    first = p.compute.register_task_definition(p.spec("1.0.0"))
    again = p.compute.register_task_definition(p.spec("1.0.0"))
    second = p.compute.register_task_definition(p.spec("1.1.0"))
    assert again == first
    assert second.revision == first.revision + 1
    assert p.compute.describe_task_definition("web") == second
    assert p.compute.describe_task_definition(first.ref).spec.version == "1.0.0"
    with pytest.raises(NotFoundError, match="nosuch"):
        p.compute.describe_task_definition("nosuch:1")


def test_service_reaches_steady_state_and_registers_targets(
    platform_under_test: LocalPlatformHandle,
) -> None:
    """DEP-2: N replicas running and healthy, each a healthy target of its group."""
    p = platform_under_test
    td = p.compute.register_task_definition(p.spec("1.0.0"))
    p.traffic.create_target_group("web-blue", health_check=FAST_HEALTH)
    state = p.compute.create_service(
        "web-blue", task_definition=td.ref, desired_count=2, target_group="web-blue"
    )
    assert state.desired == 2
    p.wait_until(lambda: bool((s := p.compute.describe_service("web-blue")) and s.steady))

    def healthy_targets() -> int:
        tg = p.traffic.describe_target_group("web-blue")
        return tg.healthy_count if tg else 0

    p.wait_until(lambda: healthy_targets() == 2, what="2 healthy targets")
    state2 = p.compute.describe_service("web-blue")
    assert state2 is not None
    assert {t.state for t in state2.tasks} == {TaskState.RUNNING}
    assert all(t.task_definition == td.ref for t in state2.tasks)
    assert "web-blue" in p.compute.list_services()

    p.compute.delete_service("web-blue")
    assert p.compute.describe_service("web-blue") is None
    assert "web-blue" not in p.compute.list_services()
    p.wait_until(lambda: healthy_targets() == 0, what="targets removed")


def test_listener_switch_reads_back_and_guards_target_groups(
    platform_under_test: LocalPlatformHandle,
) -> None:
    """DEP-3/RB-2: the switch is atomic and verified; a live target group cannot be deleted."""
    p = platform_under_test
    for tg in ("web-blue", "web-green"):
        assert p.traffic.create_target_group(tg, health_check=FAST_HEALTH).name == tg
    assert p.traffic.describe_listener("web-prod").target_group == "web-blue"
    switched = p.traffic.switch_listener("web-prod", "web-green")
    assert switched.forwards == (("web-green", 100),)
    assert p.traffic.describe_listener("web-prod").target_group == "web-green"

    with pytest.raises(DriverError, match="web-prod"):
        p.traffic.delete_target_group("web-green")
    with pytest.raises(NotFoundError, match="web-purple"):
        p.traffic.switch_listener("web-prod", "web-purple")
    with pytest.raises(NotFoundError):
        p.traffic.describe_listener("nope-prod")

    p.traffic.switch_listener("web-test", "web-blue")  # the idle colour may now be removed
    p.traffic.switch_listener("web-prod", "web-blue")
    p.traffic.switch_listener("web-test", "web-blue")
    p.traffic.delete_target_group("web-green")
    assert p.traffic.describe_target_group("web-green") is None
    assert "web-green" not in p.traffic.list_target_groups()
    again = p.traffic.create_target_group("web-green", health_check=FAST_HEALTH)
    assert again.targets == ()


def test_rolling_update_keeps_minimum_healthy(platform_under_test: LocalPlatformHandle) -> None:
    """IAC-4: a new task definition replaces tasks without dropping below 100 % healthy."""
    p = platform_under_test
    old = p.compute.register_task_definition(p.spec("1.0.0"))
    new = p.compute.register_task_definition(p.spec("1.1.0"))
    p.traffic.create_target_group("web-blue", health_check=FAST_HEALTH)
    p.compute.create_service(
        "web-blue", task_definition=old.ref, desired_count=2, target_group="web-blue"
    )
    p.wait_until(lambda: bool((s := p.compute.describe_service("web-blue")) and s.steady))
    p.compute.update_service("web-blue", task_definition=new.ref)
    lowest = 2
    done = False

    def replaced() -> bool:
        nonlocal lowest, done
        s = p.compute.describe_service("web-blue")
        assert s is not None
        lowest = min(lowest, s.healthy)
        live = [t for t in s.tasks if t.state is not TaskState.STOPPED]
        done = s.steady and all(t.task_definition == new.ref for t in live) and len(live) == 2
        return done

    p.wait_until(replaced, timeout_s=30, what="all tasks on the new revision")
    assert lowest >= 2
    tg = p.traffic.describe_target_group("web-blue")
    assert tg is not None
    p.wait_until(
        lambda: (
            (g := p.traffic.describe_target_group("web-blue")) is not None
            and g.healthy_count == 2
            and all(t.state is TargetState.HEALTHY for t in g.targets)
        ),
        what="only the new tasks as healthy targets",
    )


def test_weights_are_declared_not_faked(platform_under_test: LocalPlatformHandle) -> None:
    """A weighted split reads back as weights; one group with weight > 0 is a switch."""
    p = platform_under_test
    for tg in ("web-blue", "web-green"):
        p.traffic.create_target_group(tg, health_check=FAST_HEALTH)
    if "weights" not in p.traffic.capabilities:  # pragma: no cover - drivers without weights
        with pytest.raises(UnsupportedError, match="weight"):
            p.traffic.set_weights("web-prod", {"web-blue": 90, "web-green": 10})
        return
    p.traffic.switch_listener("web-prod", "web-blue")
    listener = p.traffic.set_weights("web-prod", {"web-blue": 90, "web-green": 10})
    assert dict(listener.forwards) == {"web-blue": 90, "web-green": 10}
    assert p.traffic.describe_listener("web-prod").forwards == listener.forwards
    assert listener.target_group == "web-blue"
    with pytest.raises(DriverError, match="web-green"):
        p.traffic.delete_target_group("web-green")  # it takes 10 % of the requests
    back = p.traffic.set_weights("web-prod", {"web-blue": 100, "web-green": 0})
    assert back.forwards == (("web-blue", 100),)
    moved = p.traffic.set_weights("web-prod", {"web-blue": 0, "web-green": 100})
    assert moved.forwards == (("web-green", 100),)
    split = p.traffic.set_weights("web-prod", {"web-blue": 25, "web-green": 75})
    assert dict(split.forwards) == {"web-green": 75, "web-blue": 25}
    assert p.traffic.switch_listener("web-prod", "web-green").forwards == (("web-green", 100),)
