"""The ``Metrics`` / ``Prober`` contract (tests/contract/test_metrics_prober.py) run on the
AWS drivers: ``CloudWatchMetrics`` over ``GetMetricData`` against the simulator's CloudWatch,
which counts the requests the stand-in prober sent through each listener to each target
group (tests/contract/aws_handle.py).

Every test of the shared suite is collected here again with ``platform_under_test`` bound to
the AWS handle. Only a real account can confirm: CloudWatch's publication delay (a minute or
more before a request is counted), the ALB's own counting (health checks are not requests),
percentiles computed by CloudWatch, and real HTTP through the ALB's DNS name.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tests.contract.test_metrics_prober as suite
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
