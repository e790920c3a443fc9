"""The AWS drivers as one contract-suite ``platform_under_test``: ``EcsCompute``,
``ElbTraffic`` and ``CloudWatchMetrics`` against moto's server, with the task simulator of
tests/integration/aws/moto_rig.py running the tasks moto only records, on a virtual clock.

The simulator's CloudWatch counts exactly the requests the stand-in prober sent through each
listener (no invented background traffic: ``requests_per_minute=0``). The prober stands in
for the ALB: on the aws platform the engine's prober is the same ``HttpProber`` the local
contract runs, sending real HTTP to the ALB's DNS name, which moto cannot answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from deployops.clock import VirtualClock
from deployops.domain.model import TaskDefinitionSpec
from deployops.drivers.aws import build_with
from tests.contract.conftest import ContractPlatform
from tests.fixtures_local import FAST_HEALTH
from tests.integration.aws.moto_rig import EcsSimulator, MotoServer, provision, session_for

__all__ = ["aws_platform"]


def aws_platform(aws: MotoServer) -> Iterator[ContractPlatform]:
    session = session_for(aws)
    world = provision(session, service="web", stack="web", terraform_owned=False)
    clock = VirtualClock()
    sim = EcsSimulator(session=session, clock=clock, cluster="web", requests_per_minute=0).install()
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
