"""Application data with restic (DR-1 row 2): incremental snapshots to a local repository or
an S3-compatible one, ``forget --keep-within`` for the retention, ``check --read-data-subset``
to read part of the data back.

The repository password travels in the child's environment (``RESTIC_PASSWORD``), never on a
command line, in a message or a log. ``--keep-hourly`` is not used: it buckets by clock hour
and would drop a second snapshot taken within the same hour.

>>> repo = ResticBackupRepo(repository="/srv/backups/app", password=Secret("..."), clock=clock)
... # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from deployops.clock import Clock
from deployops.domain.backup import BackupPoint, BackupTarget
from deployops.errors import BackupError, NotFoundError
from deployops.secret import Secret

__all__ = ["ResticBackupRepo"]

DRIVER = "restic"


class ResticBackupRepo:
    """The ``BackupRepo`` port on restic."""

    name: ClassVar[str] = DRIVER
    capabilities: ClassVar[frozenset[str]] = frozenset({"incremental", "read-data-check"})

    def __init__(
        self,
        *,
        repository: str,
        password: Secret,
        clock: Clock,
        restic: str = "restic",
        extra_env: Mapping[str, str] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.repository = repository
        self._password = password
        self.clock = clock
        self._restic = restic
        self._extra_env = dict(extra_env or {})
        self._cache_dir = cache_dir

    # ------------------------------------------------------------------ port
    def exists(self) -> bool:
        proc = self._proc(["cat", "config"], timeout_s=60)
        return proc.returncode == 0

    def init(self) -> None:
        if self.exists():
            return
        self._run(["init"], what="create the backup repository")

    def backup(self, paths: Sequence[Path], *, tags: Sequence[str] = ()) -> BackupPoint:
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise BackupError(
                f"nothing to back up at {', '.join(missing)}",
                hint="check backups.app_data.paths in deployops.yaml",
            )
        started = self.clock.now()
        args = ["backup", "--json", *(f"--tag={t}" for t in tags), *map(str, paths)]
        out = self._run(args, what="back up application data", timeout_s=3600)
        summary: dict[str, Any] = {}
        for line in out.splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("message_type") == "summary":
                summary = msg
        if not summary.get("snapshot_id"):
            raise BackupError("restic finished without reporting a snapshot")
        return BackupPoint(
            target=BackupTarget.APP_DATA,
            id=str(summary["snapshot_id"])[:8],
            kind="snapshot",
            started_at=started,
            finished_at=self.clock.now(),
            size_bytes=int(summary.get("total_bytes_processed", 0)),
            added_bytes=int(summary.get("data_added", 0)),
        )

    def snapshots(self) -> list[BackupPoint]:
        out = self._run(["snapshots", "--json"], what="list snapshots")
        try:
            items = json.loads(out or "[]")
        except ValueError as exc:
            raise BackupError("restic snapshots did not answer JSON") from exc
        points = []
        for s in items or []:
            at = datetime.fromisoformat(str(s["time"]))
            points.append(
                BackupPoint(
                    target=BackupTarget.APP_DATA,
                    id=str(s.get("short_id") or s["id"][:8]),
                    kind="snapshot",
                    started_at=at,
                    finished_at=at,
                )
            )
        return sorted(points, key=lambda p: p.finished_at)

    def restore(self, snapshot_id: str, target: Path) -> None:
        if snapshot_id != "latest" and snapshot_id not in {p.id for p in self.snapshots()}:
            raise NotFoundError(
                f"no application-data snapshot {snapshot_id!r}",
                hint="list the snapshots with: deployops backup list --target app-data",
            )
        target.mkdir(parents=True, exist_ok=True)
        self._run(
            ["restore", snapshot_id, "--target", str(target)],
            what="restore application data",
            timeout_s=3600,
        )

    def forget(self, keep_within_s: float) -> list[str]:
        hours = max(1, math.ceil(keep_within_s / 3600))
        before = {p.id for p in self.snapshots()}
        self._run(
            ["forget", "--keep-within", f"{hours}h", "--prune"],
            what="apply the retention",
            timeout_s=3600,
        )
        after = {p.id for p in self.snapshots()}
        return sorted(before - after)

    def check(self, *, read_data_percent: float = 5.0) -> list[str]:
        pct = min(100.0, max(0.1, read_data_percent))
        proc = self._proc(["check", f"--read-data-subset={pct:g}%"], timeout_s=3600)
        if proc.returncode == 0:
            return []
        lines = [ln.strip() for ln in (proc.stdout + "\n" + proc.stderr).splitlines()]
        problems = [
            ln
            for ln in lines
            if ln and any(w in ln.lower() for w in ("error", "fail", "invalid", "damaged"))
        ]
        return problems[:10] or [f"restic check exited {proc.returncode}"]

    # ------------------------------------------------------------------ processes
    def _env(self) -> dict[str, str]:
        keep = ("PATH", "HOME", "TMPDIR", "LANG")
        env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("AWS_")}
        env.update(self._extra_env)
        env["RESTIC_REPOSITORY"] = self.repository
        env["RESTIC_PASSWORD"] = self._password.reveal()
        if self._cache_dir is not None:
            env["RESTIC_CACHE_DIR"] = str(self._cache_dir)
        return env

    def _proc(self, args: Sequence[str], *, timeout_s: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self._restic, *args],
                env=self._env(),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BackupError(f"restic {args[0]} took longer than {timeout_s:g}s") from exc
        except FileNotFoundError as exc:
            raise BackupError(
                "restic is not installed", hint="install it with: make system-deps"
            ) from exc

    def _run(self, args: Sequence[str], *, what: str, timeout_s: float = 600) -> str:
        proc = self._proc(args, timeout_s=timeout_s)
        if proc.returncode == 0:
            return proc.stdout
        text = proc.stderr.replace(self._password.reveal(), "[REDACTED]")
        low = text.lower()
        if "wrong password" in low:
            raise BackupError(
                f"{what} failed: the repository password is wrong",
                hint="check backups.app_data.password in deployops.yaml",
            )
        if "is there a repository" in low or "unable to open config" in low:
            raise BackupError(
                f"{what} failed: no backup repository at {self.repository}",
                hint="create it with: deployops backup run --target app-data",
            )
        if "no space left" in low:
            raise BackupError(
                f"{what} failed: the backup repository is full",
                hint=f"free space where {self.repository} lives",
            )
        first = " | ".join([ln for ln in text.strip().splitlines() if ln.strip()][:3])
        raise BackupError(f"{what} failed: {first or f'restic exited {proc.returncode}'}")
