"""Config history (DR-1 row 3, RPO 0): every applied configuration — ``deployops.yaml``, the
application's ``config/`` files (environment files, schema) and rendered task definitions —
committed to a Git repository under ``.deployops/config-history``; any earlier state restored
with ``deployops restore config --at TIME``.

Secret values are never in these files (they hold ``secret://`` references), and ``.env.local``
(development secrets) is never recorded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from deployops.clock import Clock
from deployops.errors import BackupError, NotFoundError

__all__ = ["ConfigHistory", "ConfigVersion"]

_NEVER = (".env.local",)


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    commit: str
    at: datetime
    message: str


class ConfigHistory:
    name: ClassVar[str] = "git-config-history"
    capabilities: ClassVar[frozenset[str]] = frozenset({"point-in-time"})

    def __init__(self, *, project_root: Path, repo: Path, clock: Clock) -> None:
        self.project_root = project_root
        self.repo = repo
        self.clock = clock

    def _git(self, *args: str, env: dict[str, str] | None = None) -> str:
        full = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.repo),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "deployops",
            "GIT_AUTHOR_EMAIL": "deployops@localhost",
            "GIT_COMMITTER_NAME": "deployops",
            "GIT_COMMITTER_EMAIL": "deployops@localhost",
            **(env or {}),
        }
        try:
            proc = subprocess.run(
                ["git", "-C", str(self.repo), *args],
                capture_output=True,
                text=True,
                env=full,
                timeout=60,
                check=False,
            )
        except FileNotFoundError as exc:
            raise BackupError("git is not installed", hint="apt-get install git") from exc
        if proc.returncode != 0:
            raise BackupError(f"config history: git {args[0]} failed: {proc.stderr.strip()[:300]}")
        return proc.stdout

    def tracked(self) -> list[Path]:
        """The files recorded: deployops.yaml and config/** (never .env.local)."""
        files = [self.project_root / "deployops.yaml"]
        cfg = self.project_root / "config"
        if cfg.is_dir():
            files += sorted(p for p in cfg.rglob("*") if p.is_file() and p.name not in _NEVER)
        return [f for f in files if f.is_file()]

    def record(self, message: str, *, extra: Iterable[tuple[str, str]] = ()) -> str | None:
        """Commit the current configuration (and ``extra`` (relative path, text) pairs, e.g. a
        rendered task definition) if anything changed; returns the commit or ``None``."""
        if not (self.repo / ".git").is_dir():
            self.repo.mkdir(parents=True, exist_ok=True)
            self._git("init", "-q")
        tree = self.repo / "files"
        if tree.exists():
            shutil.rmtree(tree)
        for src in self.tracked():
            dest = tree / src.relative_to(self.project_root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
        for rel, text in extra:
            dest = self.repo / "rendered" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text)
        self._git("add", "-A")
        if not self._git("status", "--porcelain").strip():
            return None
        stamp = self.clock.now().astimezone(UTC).isoformat()
        self._git(
            "commit",
            "-q",
            "-m",
            message,
            env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp},
        )
        return self._git("rev-parse", "HEAD").strip()

    def versions(self) -> list[ConfigVersion]:
        if not (self.repo / ".git").is_dir():
            return []
        out = self._git("log", "--format=%H%x09%cI%x09%s")
        rows = []
        for line in out.splitlines():
            commit, at, msg = line.split("\t", 2)
            rows.append(ConfigVersion(commit=commit, at=datetime.fromisoformat(at), message=msg))
        return rows

    def at(self, when: datetime) -> ConfigVersion:
        """The configuration in force at ``when``: the last commit at or before it."""
        for v in self.versions():  # newest first
            if v.at <= when:
                return v
        raise NotFoundError(
            f"no configuration was recorded at or before {when.isoformat()}",
            hint="see the recorded versions with: deployops restore config --list",
        )

    def restore(self, when: datetime) -> tuple[ConfigVersion, list[Path]]:
        """Write the configuration of ``when`` back into the project. The current one is
        recorded first, so the restore itself can be undone."""
        version = self.at(when)
        self.record("before restoring the configuration of " + when.isoformat())
        listing = self._git("ls-tree", "-r", "--name-only", version.commit, "files")
        written = []
        for name in listing.splitlines():
            rel = Path(name).relative_to("files")
            content = subprocess.run(
                ["git", "-C", str(self.repo), "show", f"{version.commit}:{name}"],
                capture_output=True,
                timeout=60,
                check=True,
            ).stdout
            dest = self.project_root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(content)
            written.append(dest)
        return version, written
