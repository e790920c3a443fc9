"""Live output of a running deployment: Rich for people, one JSON event per line for CI."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.status import Status

if TYPE_CHECKING:
    from deployops.store import EventRecord

__all__ = ["JsonReporter", "TextReporter"]

_MARK = {
    "step.succeeded": "[green]✓[/green]",
    "step.failed": "[red]✗[/red]",
    "deploy.succeeded": "[bold green]✓[/bold green]",
    "deploy.failed": "[bold red]✗[/bold red]",
    "deploy.rolled_back": "[bold yellow]↶[/bold yellow]",
    "decision": "[yellow]![/yellow]",
    "traffic.restored": "[yellow]↶[/yellow]",
}


class JsonReporter:
    """``-o json``: every event as one JSON object per line on stdout."""

    def __call__(self, event: EventRecord) -> None:
        sys.stdout.write(
            json.dumps(
                {
                    "ts": event.ts.isoformat(),
                    "kind": event.kind,
                    "level": event.level,
                    "deployment_id": event.deployment_id,
                    "message": event.message,
                    "data": event.data,
                },
                default=str,
            )
            + "\n"
        )
        sys.stdout.flush()


class TextReporter:
    """Phase headings, one line per step, and a spinner with the countdown during waits."""

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self._phase = ""
        self._status: Status | None = None

    def __call__(self, event: EventRecord) -> None:
        if event.kind == "progress":
            if self.quiet:
                return
            if event.data.get("line"):
                # While observing, a line every few seconds: each rule against its threshold
                # and the time left (a log or CI shows what is being judged, not silence).
                left = event.data.get("seconds_left")
                tail = f" ({left:.0f}s left)" if left else ""
                self.console.print(
                    f"    {event.message}{tail}", highlight=False, markup=False, soft_wrap=True
                )
            if not self.console.is_terminal:
                return
            left = event.data.get("seconds_left")
            text = f"{event.message}  [dim]({left:.0f}s left)[/dim]" if left else event.message
            if self._status is None:
                self._status = self.console.status(text)
                self._status.start()
            else:
                self._status.update(text)
            return
        self.stop()
        if self.quiet and event.level not in ("error", "warning"):
            return
        if event.kind == "step.started":
            phase = str(event.data.get("phase", ""))
            if phase != self._phase:
                self._phase = phase
                self.console.print(f"[bold]{phase}[/bold]")
            self.console.print(f"  {event.message}", highlight=False)
            return
        mark = _MARK.get(event.kind, " ")
        indent = "    " if event.kind.startswith("step.") else ""
        self.console.print(f"{indent}{mark} {event.message}", highlight=False)

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
