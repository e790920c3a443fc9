"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's AWS or deployops settings."""
    for key in list(os.environ):
        if key.startswith(("AWS_", "DEPLOYOPS_")):
            monkeypatch.delenv(key, raising=False)
    yield
