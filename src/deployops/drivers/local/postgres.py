"""The application's PostgreSQL on the local platform, backed up with pgBackRest (DR-1, DR-2,
DR-4, DR-5).

Layout under ``<project>/.deployops/local/<env>/db/``::

    pgbackrest/pgbackrest.conf   rendered from the database policy (one stanza, ``app``)
    repo/                        the pgBackRest repository (fulls, diffs, WAL archive)
    instances/<id>/data          one PostgreSQL 15 cluster per instance
    instances/<id>/instance.json its port and role
    primary.json                 which instance the application and the backups use

PostgreSQL refuses to run as root, so as root every command runs as the ``postgres`` account.
Instances listen on 127.0.0.1 only; the application's role has a password (scram), the
``postgres`` superuser is trusted on the loopback (the platform's own tooling).

Pitfalls this driver guards against (each found the hard way):

* ``--target-action`` defaults to ``pause``: a restored cluster would sit read-only; we pass
  ``promote``.
* a target time is only reachable once the WAL holding it is archived:
  :meth:`archived_until` switches WAL and waits for ``pg_stat_archiver`` before answering.
* retention options given to ``stanza-create`` on the command line are refused; they live in
  the configuration file, which every command reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import psutil
import psycopg

from deployops.clock import Clock
from deployops.domain.backup import (
    BackupPoint,
    BackupPolicy,
    BackupTarget,
    DbInstance,
    DbRole,
    RestoreTarget,
    archive_timeout_s,
    pgbackrest_options,
)
from deployops.errors import BackupError, DriverError, NotFoundError
from deployops.secret import Secret

__all__ = ["PG_BIN", "LocalPostgres", "PostgresLayout"]

DRIVER = "local-postgres"
STANZA = "app"
PG_BIN = Path(os.environ.get("DEPLOYOPS_PG_BIN", "/usr/lib/postgresql/15/bin"))
_SOCKET_MAX = 90


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _chown_postgres(path: Path) -> None:
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam("postgres")
    os.chown(path, pw.pw_uid, pw.pw_gid)


def _superuser() -> str:
    return "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


@dataclass(frozen=True, slots=True)
class PostgresLayout:
    """Every path of one environment's database (one function per name, CONVENTIONS 14)."""

    root: Path

    @property
    def conf_dir(self) -> Path:
        return self.root / "pgbackrest"

    @property
    def conf(self) -> Path:
        return self.conf_dir / "pgbackrest.conf"

    @property
    def include_dir(self) -> Path:
        """An empty include path: the system's /etc/pgbackrest/conf.d must not leak in."""
        return self.conf_dir / "conf.d"

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def logs(self) -> Path:
        return self.root / "pgbackrest-log"

    @property
    def locks(self) -> Path:
        return self.root / "pgbackrest-lock"

    @property
    def primary_json(self) -> Path:
        return self.root / "primary.json"

    def instance(self, instance_id: str) -> Path:
        return self.root / "instances" / instance_id

    def data(self, instance_id: str) -> Path:
        return self.instance(instance_id) / "data"

    def sockets(self, instance_id: str) -> Path:
        """Unix sockets need a short path: a hashed folder under the temp dir when deep."""
        wanted = self.instance(instance_id)
        if len(str(wanted / ".s.PGSQL.65535.lock")) <= _SOCKET_MAX:
            return wanted
        digest = hashlib.sha256(str(wanted.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"dops-pg-{digest}"


class LocalPostgres:
    """The ``Database`` port on this machine. ``LocalPostgres(root=..., policy=..., clock=...)``.

    ``app_password`` is the application role's password (``DB_PASSWORD``); it is passed to
    PostgreSQL over a connection, never on a command line or in a file of ours.
    """

    name: ClassVar[str] = DRIVER
    capabilities: ClassVar[frozenset[str]] = frozenset({"pitr", "snapshot", "standby", "verify"})

    def __init__(
        self,
        *,
        root: Path,
        policy: BackupPolicy,
        clock: Clock,
        database: str = "app",
        user: str = "app",
        app_password: Secret | None = None,
        process_max: int = 2,
        archive_timeout: int | None = None,
        pgbackrest: str = "pgbackrest",
    ) -> None:
        self.layout = PostgresLayout(root=root)
        self.policy = policy
        self.clock = clock
        self.database = database
        self.user = user
        self._password = app_password
        self.process_max = process_max
        self.archive_timeout = archive_timeout or archive_timeout_s(policy)
        self._pgbackrest = pgbackrest

    # ------------------------------------------------------------------ instances
    def _meta(self, instance_id: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.layout.instance(instance_id) / "instance.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write_meta(self, instance_id: str, **meta: Any) -> None:
        path = self.layout.instance(instance_id) / "instance.json"
        current = self._meta(instance_id) or {}
        current.update(meta)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, indent=2, default=str))
        tmp.replace(path)

    def _describe(self, instance_id: str) -> DbInstance:
        meta = self._meta(instance_id)
        if meta is None:
            raise NotFoundError(
                f"no database instance {instance_id!r}",
                hint="list them with: deployops backup list -o json",
            )
        created = meta.get("created_at")
        return DbInstance(
            id=instance_id,
            host="127.0.0.1",
            port=int(meta["port"]),
            role=DbRole(meta.get("role", DbRole.PRIMARY.value)),
            running=self._running(instance_id),
            created_at=datetime.fromisoformat(created) if created else None,
        )

    def instances(self) -> list[DbInstance]:
        base = self.layout.root / "instances"
        if not base.is_dir():
            return []
        return [self._describe(p.name) for p in sorted(base.iterdir()) if self._meta(p.name)]

    def primary(self) -> DbInstance:
        try:
            data = json.loads(self.layout.primary_json.read_text())
        except (OSError, ValueError):
            raise NotFoundError(
                "the application's database has not been created yet",
                hint="create it with: deployops db start",
            ) from None
        return self._describe(str(data["instance"]))

    def primary_id(self) -> str | None:
        try:
            return str(json.loads(self.layout.primary_json.read_text())["instance"])
        except (OSError, ValueError, KeyError):
            return None

    def _set_primary(self, instance_id: str) -> None:
        tmp = self.layout.primary_json.with_suffix(".tmp")
        tmp.write_text(json.dumps({"instance": instance_id}))
        tmp.replace(self.layout.primary_json)
        self._write_conf(instance_id)

    def _running(self, instance_id: str) -> bool:
        pidfile = self.layout.data(instance_id) / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return False
        try:
            proc = psutil.Process(pid)
            # A killed postmaster can linger as a zombie until its parent reaps it.
            return bool(proc.status() != psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:
            return True

    def dsn(self, instance: DbInstance, database: str = "postgres") -> str:
        """A superuser connection string (the platform's own tooling; no password)."""
        return (
            f"host=127.0.0.1 port={instance.port} dbname={database} user={_superuser()} "
            "connect_timeout=5"
        )

    def _ensure_dirs(self) -> None:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # As root the cluster runs as ``postgres``, which must be able to pass through
            # every folder above its own: add search permission (x, never r) where missing.
            for parent in self.layout.root.resolve().parents:
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    parent.chmod(mode | stat.S_IXOTH)
        for d in (
            self.layout.root,
            self.layout.conf_dir,
            self.layout.include_dir,
            self.layout.repo,
            self.layout.logs,
            self.layout.locks,
            self.layout.root / "instances",
        ):
            d.mkdir(parents=True, exist_ok=True)
            _chown_postgres(d)

    def _write_conf(self, primary_id: str) -> None:
        """pgbackrest.conf from the policy; the stanza points at the current primary."""
        meta = self._meta(primary_id) or {}
        opts = pgbackrest_options(self.policy, process_max=self.process_max)
        lines = ["[global]", f"repo1-path={self.layout.repo}"]
        lines += [f"{k}={v}" for k, v in opts.items()]
        lines += [
            f"log-path={self.layout.logs}",
            f"lock-path={self.layout.locks}",
            "log-level-console=warn",
            "log-level-stderr=warn",
            "log-level-file=info",
            "",
            f"[{STANZA}]",
            f"pg1-path={self.layout.data(primary_id)}",
            f"pg1-port={meta.get('port', 5432)}",
            f"pg1-socket-path={self.layout.sockets(primary_id)}",
            f"pg1-user={_superuser()}",
            "",
        ]
        self._ensure_dirs()
        tmp = self.layout.conf.with_suffix(".tmp")
        tmp.write_text("\n".join(lines))
        _chown_postgres(tmp)
        tmp.replace(self.layout.conf)

    def _server_options(self, instance_id: str, *, port: int, archive: bool) -> str:
        sockets = self.layout.sockets(instance_id)
        push = (
            f"{self._pgbackrest} --config={self.layout.conf} "
            f"--config-include-path={self.layout.include_dir} --stanza={STANZA} "
            f"--pg1-path={self.layout.data(instance_id)} archive-push %p"
        )
        opts = [
            "listen_addresses=127.0.0.1",
            f"port={port}",
            f"unix_socket_directories={sockets}",
            "wal_level=replica",
            "max_wal_senders=5",
            "hot_standby=on",
            f"archive_mode={'on' if archive else 'off'}",
            f"archive_timeout={self.archive_timeout}",
            "max_connections=100",
        ]
        parts = [f"-c {o}" for o in opts]
        if archive:
            parts.append(f"-c archive_command='{push}'")
        return " ".join(parts)

    def _start(self, instance_id: str, *, archive: bool, timeout_s: float = 60.0) -> None:
        meta = self._meta(instance_id)
        assert meta is not None
        sockets = self.layout.sockets(instance_id)
        sockets.mkdir(parents=True, exist_ok=True)
        _chown_postgres(sockets)
        if self._running(instance_id):
            return
        # After a kill -9 of the postmaster its backends take a moment to notice and exit;
        # until they have, the old shared memory is in use and a start is refused. Retry.
        deadline = self.clock.monotonic() + 30.0
        while True:
            try:
                self._pg_ctl_start(instance_id, meta, archive=archive, timeout_s=timeout_s)
                return
            except DriverError:
                if self.clock.monotonic() > deadline or self._running(instance_id):
                    raise
                self.clock.sleep(0.5)

    def _pg_ctl_start(
        self, instance_id: str, meta: dict[str, Any], *, archive: bool, timeout_s: float
    ) -> None:
        self._pg(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.layout.data(instance_id)),
                "-l",
                str(self.layout.instance(instance_id) / "server.log"),
                "-o",
                self._server_options(instance_id, port=int(meta["port"]), archive=archive),
                "-w",
                "-t",
                str(int(timeout_s)),
                "start",
            ],
            what=f"start database instance {instance_id}",
            timeout_s=timeout_s + 10,
        )

    def stop(self, instance_id: str, *, mode: str = "fast") -> None:
        if not self._running(instance_id):
            return
        self._pg(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.layout.data(instance_id)),
                "-m",
                mode,
                "-w",
                "stop",
            ],
            what=f"stop database instance {instance_id}",
        )

    def kill(self, instance_id: str) -> None:
        """SIGKILL the postmaster (a drill's failure injection); its children follow."""
        pidfile = self.layout.data(instance_id) / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError, ProcessLookupError):
            os.kill(int(pidfile.read_text().splitlines()[0]), signal.SIGKILL)

    def create_primary(self, instance_id: str, *, port: int) -> DbInstance:
        """initdb a new cluster, start it archiving, create the stanza, the application's role
        and database (idempotent: an existing primary is started and returned)."""
        self._ensure_dirs()
        if self._meta(instance_id) is None:
            inst = self.layout.instance(instance_id)
            inst.mkdir(parents=True, exist_ok=True)
            _chown_postgres(inst)
            inst.chmod(0o700)
            self._write_meta(
                instance_id, port=port, role=DbRole.PRIMARY.value, created_at=self.clock.now()
            )
            _chown_postgres(inst / "instance.json")
        if not (self.layout.data(instance_id) / "PG_VERSION").is_file():
            shutil.rmtree(self.layout.data(instance_id), ignore_errors=True)
            self._pg(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.layout.data(instance_id)),
                    "-U",
                    _superuser(),
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
                what="initialise the database",
            )
            hba = self.layout.data(instance_id) / "pg_hba.conf"
            # The platform's superuser and replication on the loopback without a password;
            # the application's role with its password (scram).
            su = _superuser()
            hba.write_text(
                f"local all all trust\n"
                f"host all {su} 127.0.0.1/32 trust\n"
                f"host replication {su} 127.0.0.1/32 trust\n"
                "host all all 127.0.0.1/32 scram-sha-256\n"
            )
            _chown_postgres(hba)
        self._set_primary(instance_id)
        self._start(instance_id, archive=True)
        self._pgbackrest_run(["stanza-create"], what="create the backup stanza")
        self._ensure_app_role(self._describe(instance_id))
        return self._describe(instance_id)

    def _ensure_app_role(self, instance: DbInstance) -> None:
        from psycopg import sql

        with psycopg.connect(self.dsn(instance), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.user,))
            verb = "ALTER" if exists.fetchone() else "CREATE"
            stmt = sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(self.user),
                sql.Literal(self._password.reveal() if self._password else None),
            )
            conn.execute(stmt)
            has_db = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
            if not has_db.fetchone():
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(self.database), sql.Identifier(self.user)
                    )
                )

    def set_app_password(self, password: Secret) -> None:
        """Change the application role's password on the primary (rotation)."""
        self._password = password
        self._ensure_app_role(self.primary())

    # ------------------------------------------------------------------ backups
    def backup(self, kind: str) -> BackupPoint:
        if kind not in ("full", "diff", "incr"):
            raise BackupError(f"unknown backup kind {kind!r}", hint="use full, diff or incr")
        before = {p.id for p in self.backups()}
        self._pgbackrest_run([f"--type={kind}", "backup"], what=f"{kind} backup", timeout_s=3600)
        new = [p for p in self.backups() if p.id not in before]
        if not new:
            raise BackupError("pgBackRest reported success but listed no new backup")
        return new[-1]

    def info(self) -> dict[str, Any]:
        out = self._pgbackrest_run(["--output=json", "info"], what="list backups")
        try:
            doc = json.loads(out)
        except ValueError as exc:
            raise BackupError("pgBackRest info did not answer JSON") from exc
        for stanza in doc:
            if stanza.get("name") == STANZA:
                return dict(stanza)
        return {}

    def backups(self) -> list[BackupPoint]:
        points = []
        for b in self.info().get("backup", []):
            ts = b.get("timestamp", {})
            info = b.get("info", {})
            points.append(
                BackupPoint(
                    target=BackupTarget.DATABASE,
                    id=str(b["label"]),
                    kind=str(b.get("type", "full")),
                    started_at=datetime.fromtimestamp(int(ts.get("start", 0)), UTC),
                    finished_at=datetime.fromtimestamp(int(ts.get("stop", 0)), UTC),
                    size_bytes=int(info.get("size", 0)),
                    added_bytes=int(info.get("repository", {}).get("delta", 0)),
                )
            )
        return sorted(points, key=lambda p: p.finished_at)

    def earliest_point(self) -> datetime | None:
        points = self.backups()
        return points[0].finished_at if points else None

    def archived_until(self, *, timeout_s: float = 60.0) -> datetime | None:
        """Switch WAL and wait until the segment is archived (pitfall 2). ``None`` when the
        primary is down: nothing more can be forced out, the archive holds what it holds."""
        inst = self.primary()
        if not inst.running:
            return None
        try:
            return self._switch_and_wait(inst, timeout_s=timeout_s)
        except psycopg.OperationalError:
            if not self._running(inst.id):
                return None
            raise BackupError(
                f"cannot reach the primary {inst.id} to archive its newest changes",
                hint="check it with: deployops db status",
            ) from None

    def _switch_and_wait(self, inst: DbInstance, *, timeout_s: float) -> datetime:
        with psycopg.connect(self.dsn(inst), autocommit=True) as conn:
            row = conn.execute(
                "SELECT clock_timestamp(), pg_walfile_name(pg_switch_wal())"
            ).fetchone()
            assert row is not None
            stamp, segment = row[0], str(row[1])
            deadline = self.clock.monotonic() + timeout_s
            while True:
                got = conn.execute(
                    "SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver"
                ).fetchone()
                assert got is not None
                if got[0] is not None and str(got[0]) >= segment:
                    return stamp if isinstance(stamp, datetime) else self.clock.now()
                if self.clock.monotonic() > deadline:
                    raise BackupError(
                        f"WAL segment {segment} was not archived within {timeout_s:g}s "
                        f"(last failed: {got[1] or 'none'})",
                        hint=f"see the archive log in {self.layout.logs}",
                    )
                self.clock.sleep(0.1)

    def verify(self) -> list[str]:
        proc = self._pgbackrest_proc(["verify"], timeout_s=1800)
        problems = []
        text = (proc.stdout + proc.stderr).strip()
        if proc.returncode != 0:
            problems.append(_first_lines(text) or f"verify exited {proc.returncode}")
        return problems

    def inspect(self, instance_id: str) -> dict[str, Any]:
        inst = self._describe(instance_id)
        facts: dict[str, Any] = {"instance": instance_id, "port": inst.port}
        with psycopg.connect(self.dsn(inst, self.database), autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            facts["accepting_writes"] = bool(row is not None and not row[0])
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchone()
            facts["tables"] = int(tables[0]) if tables else 0
            has_items = conn.execute("SELECT to_regclass('public.items') IS NOT NULL").fetchone()
            if has_items and has_items[0]:
                got = conn.execute(
                    "SELECT count(*), max(id), max(created_at) FROM items"
                ).fetchone()
                if got is not None:
                    facts["items"] = int(got[0])
                    facts["newest_item_id"] = got[1]
                    facts["newest_item_at"] = got[2].isoformat() if got[2] else None
        return facts

    # ------------------------------------------------------------------ restore
    def restore(self, instance_id: str, target: RestoreTarget, *, scratch: bool) -> DbInstance:
        if instance_id == self.primary_id():
            raise BackupError(
                f"refusing to restore over the primary {instance_id!r}",
                hint="restore into a new instance id",
            )
        if target.backup_id is not None and target.backup_id not in {p.id for p in self.backups()}:
            raise NotFoundError(
                f"no database backup {target.backup_id!r}",
                hint="list the backups with: deployops backup list",
            )
        meta = self._meta(instance_id)
        if meta is not None and not meta.get("restoring") and self._running(instance_id):
            inst = self._describe(instance_id)
            if self._wait_promoted(inst, timeout_s=600):
                return inst
        inst_dir = self.layout.instance(instance_id)
        # A half-finished restore (killed) is started again from scratch: nothing of it is
        # used yet, and pgBackRest wants an empty data directory.
        self.destroy(instance_id)
        self._ensure_dirs()
        inst_dir.mkdir(parents=True)
        _chown_postgres(inst_dir)
        inst_dir.chmod(0o700)
        port = _free_port()
        role = DbRole.SCRATCH if scratch else DbRole.PRIMARY
        self._write_meta(
            instance_id, port=port, role=role.value, created_at=self.clock.now(), restoring=True
        )
        args = [f"--pg1-path={self.layout.data(instance_id)}"]
        if target.to_time is not None:
            stamp = target.to_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
            args += ["--type=time", f"--target={stamp}", "--target-action=promote"]
        elif target.backup_id is not None:
            args += [f"--set={target.backup_id}", "--type=immediate", "--target-action=promote"]
        if scratch:
            args.append("--archive-mode=off")
        self._pgbackrest_run([*args, "restore"], what="restore", timeout_s=3600)
        self._start(instance_id, archive=not scratch, timeout_s=600)
        inst = self._describe(instance_id)
        if not self._wait_promoted(inst, timeout_s=600):
            raise BackupError(
                f"restored instance {instance_id} did not finish recovery",
                hint=f"see {self.layout.instance(instance_id) / 'server.log'}",
            )
        self._clear_recovery_settings(instance_id)
        self._write_meta(instance_id, restoring=False)
        return self._describe(instance_id)

    def _clear_recovery_settings(self, instance_id: str) -> None:
        """pgBackRest writes the restore's target (``recovery_target_time``,
        ``recovery_target_action``, ``restore_command``) into ``postgresql.auto.conf``. Once
        the instance is promoted they are dead weight, and a standby copied from it would
        stop replaying at the old target and promote itself: remove them."""
        auto = self.layout.data(instance_id) / "postgresql.auto.conf"
        try:
            lines = auto.read_text().splitlines()
        except OSError:
            return
        keep = [
            ln for ln in lines if not ln.strip().startswith(("recovery_target", "restore_command"))
        ]
        if keep != lines:
            auto.write_text("\n".join(keep) + "\n")
            _chown_postgres(auto)

    def _wait_promoted(self, inst: DbInstance, *, timeout_s: float) -> bool:
        deadline = self.clock.monotonic() + timeout_s
        while self.clock.monotonic() < deadline:
            try:
                with psycopg.connect(self.dsn(inst), autocommit=True) as conn:
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                    if row is not None and not row[0]:
                        return True
            except psycopg.OperationalError:
                if not self._running(inst.id):
                    return False
            self.clock.sleep(0.1)
        return False

    def promote(self, instance_id: str) -> DbInstance:
        """Make ``instance_id`` the primary: a standby is promoted first; the stanza follows
        it so the next backups and WAL come from it."""
        inst = self._describe(instance_id)
        if inst.role is DbRole.SCRATCH:
            raise BackupError(f"{instance_id} is a scratch instance (a test restore)")
        with psycopg.connect(self.dsn(inst), autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if row is not None and row[0]:
                conn.execute("SELECT pg_promote(true, 60)")
        if not self._wait_promoted(inst, timeout_s=120):
            raise BackupError(f"instance {instance_id} did not leave recovery")
        self._write_meta(instance_id, role=DbRole.PRIMARY.value)
        self._set_primary(instance_id)
        if inst.role is DbRole.STANDBY:
            # A promoted standby was started without archiving: restart it archiving into
            # the stanza so the RPO holds on the new site.
            self.stop(instance_id)
            self._start(instance_id, archive=True)
        return self._describe(instance_id)

    def start_standby(self, instance_id: str) -> DbInstance:
        primary = self.primary()
        if self._meta(instance_id) is not None and self._running(instance_id):
            return self._describe(instance_id)
        inst_dir = self.layout.instance(instance_id)
        shutil.rmtree(inst_dir, ignore_errors=True)
        inst_dir.mkdir(parents=True)
        _chown_postgres(inst_dir)
        inst_dir.chmod(0o700)
        port = _free_port()
        self._write_meta(
            instance_id, port=port, role=DbRole.STANDBY.value, created_at=self.clock.now()
        )
        self._pg(
            [
                str(PG_BIN / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                _superuser(),
                "-D",
                str(self.layout.data(instance_id)),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
            what="copy the primary for a standby",
            timeout_s=3600,
        )
        self._clear_recovery_settings(instance_id)  # keeps primary_conninfo from -R
        self._start(instance_id, archive=False)
        return self._describe(instance_id)

    def replication_lag_bytes(self, standby_id: str) -> int | None:
        """Bytes the standby has not replayed yet (``None`` when it is not streaming)."""
        primary = self.primary()
        with psycopg.connect(self.dsn(primary), autocommit=True) as conn:
            row = conn.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication"
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def destroy(self, instance_id: str) -> None:
        if self._running(instance_id):
            try:
                self.stop(instance_id, mode="immediate")
            except DriverError:
                self.kill(instance_id)
        sockets = self.layout.sockets(instance_id)
        shutil.rmtree(self.layout.instance(instance_id), ignore_errors=True)
        if sockets != self.layout.instance(instance_id):
            shutil.rmtree(sockets, ignore_errors=True)

    def stop_all(self) -> None:
        for inst in self.instances():
            if inst.running:
                try:
                    self.stop(inst.id, mode="immediate")
                except DriverError:
                    self.kill(inst.id)

    # ------------------------------------------------------------------ processes
    def _pgbackrest_proc(
        self, args: Sequence[str], *, timeout_s: float = 600
    ) -> subprocess.CompletedProcess[str]:
        argv = [
            self._pgbackrest,
            f"--config={self.layout.conf}",
            f"--config-include-path={self.layout.include_dir}",
            f"--stanza={STANZA}",
            *args,
        ]
        try:
            return subprocess.run(
                _as_postgres(argv),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
                cwd="/",
            )
        except subprocess.TimeoutExpired as exc:
            raise BackupError(f"pgBackRest {args[-1]} took longer than {timeout_s:g}s") from exc
        except FileNotFoundError as exc:
            raise BackupError(
                "pgBackRest is not installed", hint="install it with: make system-deps"
            ) from exc

    def _pgbackrest_run(self, args: Sequence[str], *, what: str, timeout_s: float = 600) -> str:
        proc = self._pgbackrest_proc(args, timeout_s=timeout_s)
        if proc.returncode != 0:
            raise BackupError(
                f"{what} failed: {_first_lines(proc.stderr or proc.stdout)}",
                hint=f"see the pgBackRest log in {self.layout.logs}",
            )
        return proc.stdout

    def _pg(self, argv: list[str], *, what: str, timeout_s: float = 120) -> None:
        try:
            proc = subprocess.run(
                _as_postgres(argv),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
                cwd="/",
            )
        except subprocess.TimeoutExpired as exc:
            raise DriverError(DRIVER, what, f"took longer than {timeout_s:g}s") from exc
        if proc.returncode != 0:
            raise DriverError(DRIVER, what, _first_lines(proc.stderr or proc.stdout))


def _first_lines(text: str, n: int = 3) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[:n])


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
