"""Polling with a deadline on the injected clock."""

from __future__ import annotations

from collections.abc import Callable

from deployops.clock import Clock
from deployops.errors import TimeoutError_

__all__ = ["wait_until"]


def wait_until(
    clock: Clock,
    check: Callable[[], tuple[bool, str]],
    *,
    timeout_s: float,
    interval_s: float,
    what: str,
    on_progress: Callable[[str, float], None] | None = None,
    hint: str | None = None,
) -> str:
    """Call ``check`` until it returns ``(True, note)`` or ``timeout_s`` passes.

    ``on_progress(note, seconds_left)`` is called after every unsuccessful check, so a
    person sees what is being waited for. Raises :class:`TimeoutError_` with the last note.
    """
    deadline = clock.monotonic() + timeout_s
    while True:
        done, note = check()
        if done:
            return note
        left = deadline - clock.monotonic()
        if left <= 0:
            raise TimeoutError_(what, note or "wait", timeout_s, hint=hint)
        if on_progress is not None:
            on_progress(note, left)
        clock.sleep(min(interval_s, left))
