"""Who holds a lock, and whether that process still runs (DEP-7).

A lock row records the holding process: its pid, its host and its start time (POSIX seconds,
as the kernel reports it). On the same host a holder is dead when no process has that pid, or
the process with that pid started at another time (the pid was reused). On another host
nothing can be checked here: the holder counts as alive.

>>> me = current_holder()
>>> holder_alive(me.pid, me.host, me.started_at)
True
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import psutil

__all__ = ["Holder", "current_holder", "holder_alive"]

#: Process start times are read with a clock tick's resolution: allow for rounding.
_START_TOLERANCE_S = 1.0


@dataclass(frozen=True, slots=True)
class Holder:
    pid: int
    host: str
    started_at: float | None


def current_holder() -> Holder:
    """This process."""
    pid = os.getpid()
    try:
        started: float | None = psutil.Process(pid).create_time()
    except psutil.Error:
        started = None
    return Holder(pid=pid, host=socket.gethostname(), started_at=started)


def holder_alive(pid: int | None, host: str | None, started_at: float | None) -> bool:
    """Whether the recorded holder still runs. Unknown (no pid, another host): ``True``."""
    if pid is None or not host or host != socket.gethostname():
        return True
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # there, but not ours to inspect
    return started_at is None or abs(created - started_at) <= _START_TOLERANCE_S
