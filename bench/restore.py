"""Restore benchmarks (DR-2, DR-1): a point-in-time restore through deployops against the same
restore done with pgBackRest and pg_ctl by hand, in the same run on the same backup (goal
<= 1.2x); an application-data backup through deployops against raw restic (goal <= 1.1x).

.venv/bin/python bench/restore.py [--mb 1024] [--app-mb 256]

The "raw" PITR is what an operator would type: ``pgbackrest restore --type=time --target=...
--target-action=promote``, ``pg_ctl start -w``, then poll ``pg_is_in_recovery()`` until false.
deployops does the same plus its bookkeeping (instance record, port, recovery settings cleared).
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _common import update_section, write_result  # noqa: E402

from deployops.clock import SystemClock  # noqa: E402
from deployops.domain.backup import DEFAULT_POLICIES, BackupTarget, RestoreTarget  # noqa: E402
from deployops.drivers.local.postgres import (  # noqa: E402
    PG_BIN,
    STANZA,
    LocalPostgres,
    _as_postgres,
    _chown_postgres,
    _free_port,
)
from deployops.drivers.local.restic import ResticBackupRepo  # noqa: E402
from deployops.secret import Secret  # noqa: E402


def _load(db: LocalPostgres, mb: int) -> None:
    inst = db.primary()
    rows_per_mb = 7000  # ~150 bytes per row with its overhead
    with psycopg.connect(db.dsn(inst, db.database), autocommit=True) as conn:
        conn.execute("CREATE TABLE big (id bigserial PRIMARY KEY, a text, b text, n int)")
        done = 0
        step = 64
        while done < mb:
            n = min(step, mb - done) * rows_per_mb
            conn.execute(
                "INSERT INTO big (a, b, n) SELECT md5(g::text), md5((g * 7)::text), g "
                "FROM generate_series(1, %s) g",
                (n,),
            )
            done += min(step, mb - done)
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        print(f"  loaded {int(size[0]) / 1e6:.0f} MB" if size else "  loaded", flush=True)
        conn.execute(
            "CREATE TABLE markers (id serial, created_at timestamptz DEFAULT clock_timestamp())"
        )


def _raw_restore(db: LocalPostgres, target: datetime, instance: str) -> float:
    data = db.layout.data(instance)
    inst_dir = data.parent
    shutil.rmtree(inst_dir, ignore_errors=True)
    inst_dir.mkdir(parents=True)
    _chown_postgres(inst_dir)
    inst_dir.chmod(0o700)
    port = _free_port()
    stamp = target.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    t0 = time.perf_counter()
    subprocess.run(
        _as_postgres(
            [
                "pgbackrest",
                f"--config={db.layout.conf}",
                f"--config-include-path={db.layout.include_dir}",
                f"--stanza={STANZA}",
                f"--pg1-path={data}",
                "--type=time",
                f"--target={stamp}",
                "--target-action=promote",
                "--archive-mode=off",
                "restore",
            ]
        ),
        check=True,
        capture_output=True,
        cwd="/",
    )
    subprocess.run(
        _as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(inst_dir / "server.log"),
                "-o",
                f"-c port={port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={inst_dir}",
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
        cwd="/",
    )
    su = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    while True:
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user=su, dbname="postgres") as c:
                row = c.execute("SELECT pg_is_in_recovery()").fetchone()
                if row is not None and not row[0]:
                    break
        except psycopg.OperationalError:
            pass
        time.sleep(0.05)
    took = time.perf_counter() - t0
    subprocess.run(
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
        check=False,
        capture_output=True,
        cwd="/",
    )
    shutil.rmtree(inst_dir, ignore_errors=True)
    return took


def bench_pitr(root: Path, mb: int) -> dict[str, Any]:
    db = LocalPostgres(
        root=root / "db",
        policy=DEFAULT_POLICIES[BackupTarget.DATABASE],
        clock=SystemClock(),
        app_password=Secret("bench-password"),
    )
    db.create_primary("primary", port=_free_port())
    try:
        _load(db, mb)
        t0 = time.perf_counter()
        full = db.backup("full")
        backup_s = time.perf_counter() - t0
        time.sleep(1.2)  # backup stop times are whole seconds
        with psycopg.connect(db.dsn(db.primary(), db.database), autocommit=True) as conn:
            conn.execute("INSERT INTO markers DEFAULT VALUES")
            conn.execute("UPDATE big SET n = n + 1 WHERE id % 200 = 0")  # WAL to replay
            row = conn.execute("SELECT clock_timestamp()").fetchone()
            assert row is not None
            target: datetime = row[0]
            conn.execute("INSERT INTO markers DEFAULT VALUES")
        db.archived_until(timeout_s=900)
        runs: dict[str, list[float]] = {"deployops": [], "raw": []}
        for i in range(2):
            for kind in ("raw", "deployops") if i % 2 == 0 else ("deployops", "raw"):
                if kind == "raw":
                    runs["raw"].append(_raw_restore(db, target, f"raw-{i}"))
                else:
                    t0 = time.perf_counter()
                    db.restore(f"dops-{i}", RestoreTarget(to_time=target), scratch=True)
                    runs["deployops"].append(time.perf_counter() - t0)
                    db.destroy(f"dops-{i}")
                print(f"  {kind} restore {i + 1}: {runs[kind][-1]:.2f}s", flush=True)
        best = {k: min(v) for k, v in runs.items()}
        return {
            "database_mb": mb,
            "backup_s": backup_s,
            "backup_size_bytes": full.size_bytes,
            "runs_s": runs,
            "best_s": best,
            "ratio": best["deployops"] / best["raw"],
        }
    finally:
        db.stop_all()


def bench_app_data(root: Path, mb: int) -> dict[str, Any]:
    data = root / "appdata"
    data.mkdir()
    for i in range(mb // 4):
        (data / f"f{i:04d}.bin").write_bytes(os.urandom(4 * 1024 * 1024))
    env = {**os.environ, "RESTIC_PASSWORD": "bench-pw", "RESTIC_CACHE_DIR": str(root / "c")}
    runs: dict[str, list[float]] = {"deployops": [], "raw": []}
    for i in range(2):
        for kind in ("raw", "deployops") if i % 2 == 0 else ("deployops", "raw"):
            repo_path = root / f"repo-{kind}-{i}"
            if kind == "raw":
                env["RESTIC_REPOSITORY"] = str(repo_path)
                subprocess.run(["restic", "init"], env=env, check=True, capture_output=True)
                t0 = time.perf_counter()
                subprocess.run(
                    ["restic", "backup", "--json", str(data)],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                runs["raw"].append(time.perf_counter() - t0)
            else:
                repo = ResticBackupRepo(
                    repository=str(repo_path),
                    password=Secret("bench-pw"),
                    clock=SystemClock(),
                    cache_dir=root / "c",
                )
                repo.init()
                t0 = time.perf_counter()
                repo.backup([data])
                runs["deployops"].append(time.perf_counter() - t0)
            shutil.rmtree(repo_path, ignore_errors=True)
            print(f"  {kind} app-data backup {i + 1}: {runs[kind][-1]:.2f}s", flush=True)
    best = {k: min(v) for k, v in runs.items()}
    return {
        "app_data_mb": mb,
        "runs_s": runs,
        "best_s": best,
        "ratio": best["deployops"] / best["raw"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024)
    ap.add_argument("--app-mb", type=int, default=256)
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="dops-bench-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    try:
        print(f"PITR restore of a {args.mb} MB database", flush=True)
        pitr = bench_pitr(root, args.mb)
        print(f"application-data backup of {args.app_mb} MB", flush=True)
        app = bench_app_data(root, args.app_mb)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    write_result("restore", {"pitr": pitr, "app_data": app})

    def met(ratio: float, goal: float) -> str:
        return "met" if ratio <= goal else "**not met**"

    pb, ab = pitr["best_s"], app["best_s"]
    rows = [
        f"| PITR restore | {pb['deployops']:.2f} s | {pb['raw']:.2f} s | {pitr['ratio']:.2f}x "
        f"| <= 1.2x ({met(pitr['ratio'], 1.2)}) |",
        f"| application-data backup, {app['app_data_mb']} MB into a new restic repository "
        f"| {ab['deployops']:.2f} s | {ab['raw']:.2f} s | {app['ratio']:.2f}x "
        f"| <= 1.1x ({met(app['ratio'], 1.1)}) |",
    ]
    command = (
        f".venv/bin/python bench/restore.py --mb {pitr['database_mb']} "
        f"--app-mb {app['app_data_mb']}"
    )
    load = float(os.getloadavg()[0])
    body = f"""
Point-in-time restore of a {pitr["database_mb"]} MB database (pgBackRest, `compress-type=zst`,
`process-max=2`) to a moment after its full backup, with WAL to replay, into a new instance
until it accepts writes: through deployops (`LocalPostgres.restore`) against the same restore
by hand (`pgbackrest restore --type=time --target-action=promote`, `pg_ctl start -w`, poll
`pg_is_in_recovery()`), interleaved, best of 2 each. The full backup took
{pitr["backup_s"]:.1f} s ({pitr["backup_size_bytes"] / 1e6:.0f} MB of data).

| | deployops | raw | ratio | goal |
|---|---|---|---|---|
{rows[0]}
{rows[1]}

The ratio is the figure to read: absolute times follow the machine's load (the 1-minute load
average is in the JSON; this run shared 2 cores with other work at a load of about
{load:.0f}).

Produced by: `{command}` (raw: `bench/results/restore.json`).
"""
    update_section("Restore and backup (DR-1, DR-2)", body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
