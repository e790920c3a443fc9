"""The contract suites run against every driver; each driver is one ``platform_under_test``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fixtures_local import LocalPlatformHandle, local_platform, local_project

__all__ = ["local_platform", "local_project", "platform_under_test"]


@pytest.fixture(params=["local"])
def platform_under_test(request: pytest.FixtureRequest) -> Iterator[LocalPlatformHandle]:
    """One per driver. The AWS drivers join with a handle of the same shape (moto/Stubber)."""
    if request.param == "local":
        yield request.getfixturevalue("local_platform")
    else:  # pragma: no cover - a new driver must add its branch here
        raise AssertionError(f"no fixture for driver {request.param}")
