"""Where the local platform keeps its files: ``<project>/.deployops/local/<env>/``.

Unix socket paths are limited to about 108 bytes; when the state directory is deeper than that,
the sockets go to a short directory under the system temp folder named by a hash of the path.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployops.config.project import ProjectConfig

__all__ = ["LocalPaths", "read_json", "write_json_atomic"]

_SOCKET_PATH_MAX = 100


@dataclass(frozen=True, slots=True)
class LocalPaths:
    """Every file of one local environment. ``LocalPaths.of(project, "development")``."""

    root: Path
    sockets: Path

    @classmethod
    def of(cls, project: ProjectConfig, environment: str) -> LocalPaths:
        return cls.at(project.state_dir / "local" / environment)

    @classmethod
    def at(cls, root: Path) -> LocalPaths:
        root = root.resolve()
        sockets = root
        if len(str(root / "haproxy.sock")) > _SOCKET_PATH_MAX:
            digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
            sockets = Path(tempfile.gettempdir()) / f"deployops-{digest}"
        return cls(root=root, sockets=sockets)

    def ensure(self) -> None:
        for folder in (self.root, self.sockets, self.logs):
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def daemon_json(self) -> Path:
        return self.root / "daemon.json"

    @property
    def state_json(self) -> Path:
        return self.root / "state.json"

    @property
    def startup_error(self) -> Path:
        return self.root / "startup-error.json"

    @property
    def daemon_log(self) -> Path:
        return self.root / "daemon.log"

    @property
    def haproxy_cfg(self) -> Path:
        return self.root / "haproxy.cfg"

    @property
    def haproxy_log(self) -> Path:
        return self.root / "haproxy.log"

    @property
    def haproxy_pid(self) -> Path:
        return self.root / "haproxy.pid"

    @property
    def server_state(self) -> Path:
        return self.root / "haproxy.state"

    @property
    def admin_socket(self) -> Path:
        return self.sockets / "haproxy.sock"

    @property
    def master_socket(self) -> Path:
        return self.sockets / "master.sock"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def map_file(self, service: str) -> Path:
        return self.root / f"{service}.map"

    def weights_map_file(self, service: str) -> Path:
        """Per listener key, the percent of its requests sent to the other colour."""
        return self.root / f"{service}.weights.map"

    def task_log(self, service: str, task_id: str) -> Path:
        return self.logs / service / f"{task_id}.log"


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or ``None`` if it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")
    tmp.replace(path)
