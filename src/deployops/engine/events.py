"""How the engine tells the outside what happens: a reporter for live output, a notifier for
stakeholders. Both are plain callables so the CLI, the controller and tests plug in their own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from deployops.store import EventRecord

__all__ = ["Notice", "Notify", "Reporter", "null_reporter"]


class Reporter(Protocol):
    def __call__(self, event: EventRecord) -> None: ...


def null_reporter(event: EventRecord) -> None:
    """Reports nothing (the events are still stored)."""
    _ = event


@dataclass(frozen=True, slots=True)
class Notice:
    """Something stakeholders should hear about (DEP-7, RB-2, MON-2)."""

    severity: str  # info | warning | critical
    kind: str  # deployment.failed, deployment.rolled_back, decision, ...
    title: str
    text: str
    dedup_key: str
    fields: Mapping[str, str] = field(default_factory=dict)
    resolve: bool = False


class Notify(Protocol):
    def __call__(self, notice: Notice) -> None:
        """Deliver; never raise (a channel that is down must not block a deploy)."""
        ...
