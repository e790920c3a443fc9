"""A throwaway PostgreSQL 15 cluster for tests: ``initdb`` into a temp dir, trust auth on
127.0.0.1, a free port, started with ``pg_ctl -w`` and removed on :meth:`PgCluster.stop`.

PostgreSQL refuses to run as root, so as root every command runs as the ``postgres`` account
(``runuser -u postgres --``) and the data dir is chowned to it.

>>> with PgCluster.start() as pg:  # doctest: +SKIP
...     pg.url  # 'postgresql+psycopg://postgres@127.0.0.1:PORT/postgres'
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = ["PG_BIN", "PgCluster", "free_port"]

PG_BIN = Path(os.environ.get("DEPLOYOPS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@dataclass
class PgCluster:
    root: Path
    port: int
    user: str = "postgres"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls) -> PgCluster:
        root = Path(tempfile.mkdtemp(prefix="deployops-pg-"))
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(root, pw.pw_uid, pw.pw_gid)
        root.chmod(0o700)
        user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        cluster = cls(root=root, port=free_port(), user=user)
        try:
            cluster._run(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(cluster.data),
                    "-A",
                    "trust",
                    "-U",
                    user,
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            )
            cluster.resume()
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return cluster

    def resume(self) -> None:
        """Start the server (again, after :meth:`halt`) on the same port and data."""
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        )
        self._run(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.root / "server.log"),
                "-o",
                opts,
                "-w",
                "-t",
                "30",
                "start",
            ]
        )

    def halt(self) -> None:
        """Stop the server at once (``-m immediate``: connections cut, as a crash would),
        keeping its data; :meth:`resume` starts it again."""
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])

    def create_database(self, name: str) -> str:
        """A fresh empty database in this cluster; returns its URL."""
        self._run(
            [
                str(PG_BIN / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                name,
            ]
        )
        return self.url_for(name)

    def stop(self) -> None:
        try:
            self._run(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, argv: list[str]) -> None:
        proc = subprocess.run(
            _as_postgres(argv), capture_output=True, text=True, timeout=60, check=False
        )
        if proc.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
            raise RuntimeError(
                f"{' '.join(argv[:2])} failed ({proc.returncode}): {proc.stderr.strip()}\n{tail}"
            )

    def __enter__(self) -> PgCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
