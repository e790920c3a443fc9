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
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tests.contract.test_compute_traffic as suite
from deployops.clock import VirtualClock
from deployops.domain.model import TaskDefinitionSpec
from deployops.drivers.aws import EcsCompute, ElbTraffic
from tests.fixtures_local import FAST_HEALTH
from tests.integration.aws.conftest import aws, moto_server
from tests.integration.aws.moto_rig import EcsSimulator, MotoServer, provision, session_for

__all__ = ["aws", "moto_server"]

pytestmark = pytest.mark.integration


@dataclass
class AwsPlatformHandle:
    compute: EcsCompute
    traffic: ElbTraffic
    clock: VirtualClock

    def spec(self, version: str = "1.0.0", **env: str) -> TaskDefinitionSpec:
        return TaskDefinitionSpec(
            family="web",
            version=version,
            port=3000,
            image=f"repo/web:{version}",
            environment=(("APP_VERSION", version), *sorted(env.items())),
            health_check=FAST_HEALTH,
        )

    def wait_until(
        self, check: Callable[[], bool], *, timeout_s: float = 15.0, what: str = "condition"
    ) -> None:
        """On the virtual clock: each try moves time on by half a second."""
        deadline = self.clock.monotonic() + timeout_s
        while self.clock.monotonic() < deadline:
            if check():
                return
            self.clock.advance(0.5)
        raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")


@pytest.fixture
def platform_under_test(aws: MotoServer) -> Iterator[AwsPlatformHandle]:
    session = session_for(aws)
    world = provision(session, service="web", stack="web", terraform_owned=False)
    clock = VirtualClock()
    EcsSimulator(session=session, clock=clock, cluster="web").install()
    traffic = ElbTraffic(client=session.client("elbv2"), resources=world.resources, clock=clock)
    compute = EcsCompute(
        client=session.client("ecs"),
        resources=world.resources,
        clock=clock,
        target_group_arn=traffic.target_group_arn,
    )
    yield AwsPlatformHandle(compute=compute, traffic=traffic, clock=clock)
    session.close()


globals().update({n: f for n, f in vars(suite).items() if n.startswith("test_")})
