"""moto's server for the AWS tests: one per session, emptied before every test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.integration.aws.moto_rig import MotoServer, aws_environment


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """A reset stand-in, with ``AWS_ENDPOINT_URL`` and dummy credentials set."""
    aws_environment(monkeypatch, moto_server)
    return moto_server
