"""The ``Compute`` / ``Traffic`` contract (tests/contract/test_compute_traffic.py) run on the
AWS drivers: ``EcsCompute`` and ``ElbTraffic`` against moto's server, with the task simulator of
tests/integration/aws/moto_rig.py running the tasks moto only records, on a virtual clock.

Every test of the shared suite is collected here again with ``platform_under_test`` bound to
the AWS handle. Only a real account can confirm: Fargate start-up times, the ALB's health
checks against a real container, connection draining on deregistration, and that in-flight
requests survive ``ModifyListener``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tests.contract.test_compute_traffic as suite
from deployops.clock import VirtualClock
from deployops.domain.model import TaskDefinitionSpec
from deployops.drivers.aws import build_with
from tests.contract.conftest import ContractPlatform
from tests.fixtures_local import FAST_HEALTH
from tests.integration.aws.conftest import aws, moto_server
from tests.integration.aws.moto_rig import EcsSimulator, MotoServer, provision, session_for

__all__ = ["aws", "moto_server"]

pytestmark = pytest.mark.integration


@pytest.fixture
def platform_under_test(aws: MotoServer) -> Iterator[ContractPlatform]:
    session = session_for(aws)
    world = provision(session, service="web", stack="web", terraform_owned=False)
    clock = VirtualClock()
    sim = EcsSimulator(session=session, clock=clock, cluster="web").install()
    platform = build_with(session, world.resources, environment="contract", clock=clock)
    handle = ContractPlatform(
        name="aws",
        compute=platform.compute,
        traffic=platform.traffic,
        metrics=platform.metrics,
        prober=sim.prober(world),
        clock=clock,
        ports={"web-prod": world.prod_port, "web-test": world.test_port},
        close=platform.close,
    )
    handle.spec = _aws_spec  # type: ignore[method-assign]
    handle.wait_until = _stepper(clock)  # type: ignore[method-assign]
    try:
        yield handle
    finally:
        handle.close()


def _stepper(clock: VirtualClock) -> Callable[..., None]:
    """Polls every half second of virtual time: each poll is several HTTP calls to moto."""

    def wait_until(
        check: Callable[[], bool], *, timeout_s: float = 15.0, what: str = "condition"
    ) -> None:
        deadline = clock.monotonic() + timeout_s
        while clock.monotonic() < deadline:
            if check():
                return
            clock.advance(0.5)
        raise AssertionError(f"{what} not reached within {timeout_s:g}s")

    return wait_until


def _aws_spec(version: str = "1.0.0", **env: str) -> TaskDefinitionSpec:
    """An image instead of a command: what a task definition on Fargate runs."""
    return TaskDefinitionSpec(
        family="web",
        version=version,
        port=3000,
        image=f"repo/web:{version}",
        environment=(("APP_VERSION", version), *sorted(env.items())),
        health_check=FAST_HEALTH,
    )


globals().update({n: f for n, f in vars(suite).items() if n.startswith("test_")})
