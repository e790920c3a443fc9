"""How the engine tells the outside what happens: a reporter for live output, a notifier for
stakeholders (the one :class:`~deployops.domain.notice.Notice`). Both are plain callables so
the CLI, the controller and tests plug in their own."""

from __future__ import annotations

from typing import Protocol

from deployops.domain.notice import Notice
from deployops.store import EventRecord

__all__ = ["Notice", "Notify", "Reporter", "null_reporter"]


class Reporter(Protocol):
    def __call__(self, event: EventRecord) -> None: ...


def null_reporter(event: EventRecord) -> None:
    """Reports nothing (the events are still stored)."""
    _ = event


class Notify(Protocol):
    def __call__(self, notice: Notice) -> None:
        """Deliver; never raise (a channel that is down must not block a deploy)."""
        ...
