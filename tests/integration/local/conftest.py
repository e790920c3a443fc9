"""Fixtures for the local platform's integration tests (real HAProxy, real processes)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.fixtures_local import local_platform, local_project

__all__ = ["local_platform", "local_project"]
