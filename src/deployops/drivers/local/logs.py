"""Logs of the local platform (DR-1 row 4): each replica's output under
``.deployops/local/<env>/logs/<service>-<colour>/<task>.log``, the daemon's ``daemon.log`` and
HAProxy's ``haproxy.log``; read with filters, followed, and pruned past the retention.

A replica line carries no timestamp of its own, so ``since`` keeps the files written to after
that moment (and, in them, lines that start with an ISO timestamp at or after it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from deployops.clock import Clock

__all__ = ["LocalLogs", "LogLine"]

_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)")


@dataclass(frozen=True, slots=True)
class LogLine:
    source: str  # the task id, "daemon" or "haproxy"
    text: str


def _stamp(line: str) -> datetime | None:
    m = _STAMP.match(line)
    if not m:
        return None
    try:
        value = datetime.fromisoformat(m[1].replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class LocalLogs:
    name: ClassVar[str] = "local-logs"
    capabilities: ClassVar[frozenset[str]] = frozenset({"follow", "retention"})

    def __init__(self, *, root: Path, clock: Clock) -> None:
        self.root = root  # .deployops/local/<env>
        self.clock = clock

    def files(self, service: str, *, include_platform: bool = False) -> list[tuple[str, Path]]:
        logs = self.root / "logs"
        found: list[tuple[str, Path]] = []
        if logs.is_dir():
            for folder in sorted(logs.iterdir()):
                if folder.is_dir() and (
                    folder.name == service or folder.name.startswith(service + "-")
                ):
                    found += [(p.stem, p) for p in sorted(folder.glob("*.log"))]
        if include_platform:
            for name in ("daemon", "haproxy"):
                p = self.root / f"{name}.log"
                if p.is_file():
                    found.append((name, p))
        return found

    def read(
        self,
        service: str,
        *,
        since: datetime | None = None,
        grep: str | None = None,
        include_platform: bool = False,
    ) -> Iterator[LogLine]:
        pattern = re.compile(grep) if grep else None
        for source, path in self.files(service, include_platform=include_platform):
            if since is not None:
                mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                if mtime < since:
                    continue
            with path.open(encoding="utf-8", errors="replace") as f:
                for raw in f:
                    line = raw.rstrip("\n")
                    at = _stamp(line)
                    if since is not None and at is not None and at < since:
                        continue
                    if pattern is not None and not pattern.search(line):
                        continue
                    yield LogLine(source=source, text=line)

    def follow(
        self,
        service: str,
        *,
        grep: str | None = None,
        poll_s: float = 0.5,
        max_s: float | None = None,
    ) -> Iterator[LogLine]:
        """New lines as they are written, in every file of the service (new replicas too).
        Where each file ends is read now, not at the first ``next()``."""
        pattern = re.compile(grep) if grep else None
        offsets = {p: p.stat().st_size for _s, p in self.files(service)}
        started = self.clock.monotonic()
        return self._follow(service, pattern, offsets, started, poll_s, max_s)

    def _follow(
        self,
        service: str,
        pattern: re.Pattern[str] | None,
        offsets: dict[Path, int],
        started: float,
        poll_s: float,
        max_s: float | None,
    ) -> Iterator[LogLine]:
        while max_s is None or self.clock.monotonic() - started < max_s:
            for source, path in self.files(service):
                pos = offsets.get(path, 0)
                size = path.stat().st_size
                if size < pos:
                    pos = 0  # rotated or truncated
                if size > pos:
                    with path.open(encoding="utf-8", errors="replace") as f:
                        f.seek(pos)
                        chunk = f.read()
                        offsets[path] = f.tell()
                    for line in chunk.splitlines():
                        if pattern is None or pattern.search(line):
                            yield LogLine(source=source, text=line)
                else:
                    offsets[path] = pos
            self.clock.sleep(poll_s)

    def prune(self, retention_s: float) -> list[Path]:
        """Delete replica log files not written to for longer than the retention (90 days by
        default); returns what was deleted."""
        cutoff = self.clock.now().timestamp() - retention_s
        removed = []
        logs = self.root / "logs"
        for path in logs.rglob("*.log") if logs.is_dir() else []:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        return removed
