"""Identifiers: sortable by time, unique, readable (``dep-20261129-174501-7f3a``)."""

from __future__ import annotations

import secrets
import threading
from datetime import datetime

__all__ = ["new_id"]

# Four hex digits give 65536 ids per prefix and second; random picks would collide once in a
# few hundred same-second pairs, so ids already handed out in the current second are skipped.
_issued_lock = threading.Lock()
_issued_stamp = ""
_issued: set[str] = set()


def new_id(prefix: str, now: datetime) -> str:
    """``{prefix}-YYYYMMDD-HHMMSS-xxxx``: lexical order follows time to the second; unique within
    the process (the state store's primary key guards across processes).

    >>> new_id("dep", datetime(2026, 11, 29, 17, 45, 1))[:20]
    'dep-20261129-174501-'
    """
    global _issued_stamp
    stamp = f"{prefix}-{now:%Y%m%d-%H%M%S}"
    with _issued_lock:
        if stamp != _issued_stamp:
            _issued_stamp = stamp
            _issued.clear()
        for _ in range(64):
            candidate = f"{stamp}-{secrets.token_hex(2)}"
            if candidate not in _issued:
                _issued.add(candidate)
                return candidate
    raise RuntimeError(f"more ids than fit in one second for {prefix!r}")
