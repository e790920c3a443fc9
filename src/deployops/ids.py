"""Identifiers: sortable by time, unique, readable (``dep-20261129-174501-7f3a``)."""

from __future__ import annotations

import secrets
from datetime import datetime

__all__ = ["new_id"]


def new_id(prefix: str, now: datetime) -> str:
    """``{prefix}-YYYYMMDD-HHMMSS-xxxx``: lexical order follows time to the second.

    >>> new_id("dep", datetime(2026, 11, 29, 17, 45, 1))[:20]
    'dep-20261129-174501-'
    """
    return f"{prefix}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
