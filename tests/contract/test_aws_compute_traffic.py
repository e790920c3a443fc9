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
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tests.contract.test_compute_traffic as suite
from tests.contract.aws_handle import aws_platform
from tests.contract.conftest import ContractPlatform
from tests.integration.aws.conftest import aws, moto_server
from tests.integration.aws.moto_rig import MotoServer

__all__ = ["aws", "moto_server"]

pytestmark = pytest.mark.integration


@pytest.fixture
def platform_under_test(aws: MotoServer) -> Iterator[ContractPlatform]:
    yield from aws_platform(aws)


globals().update({n: f for n, f in vars(suite).items() if n.startswith("test_")})
