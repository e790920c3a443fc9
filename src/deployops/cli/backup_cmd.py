"""``deployops backup run|list|test``: backups by policy (DR-1) and test restores."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from deployops.cli._common import fmt_time, get_app
from deployops.cli.app import App

group = typer.Typer(
    help=(
        "Backups of the database (pgBackRest) and application data (restic), by the policy "
        "in deployops.yaml (backups:).\n\n"
        "Examples:\n\n"
        "  deployops backup run                      # database full + application data\n\n"
        "  deployops backup run --target database --kind diff\n\n"
        "  deployops backup list -o json\n\n"
        "  deployops backup test                     # restore the latest into a scratch "
        "instance and check it"
    ),
    no_args_is_help=True,
)

_TARGETS = ("all", "database", "app-data", "config")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="backup")


def _targets(target: str) -> list[str]:
    from deployops.errors import ConfigError

    if target not in _TARGETS:
        raise ConfigError(
            f"unknown backup target {target!r}",
            path="--target",
            hint="use one of: " + ", ".join(_TARGETS),
        )
    return ["config", "database", "app-data"] if target == "all" else [target]


def _point(p: Any) -> dict[str, Any]:
    return {
        "target": p.target.value,
        "id": p.id,
        "kind": p.kind,
        "finished_at": p.finished_at.isoformat(),
        "size_bytes": p.size_bytes,
        "added_bytes": p.added_bytes,
    }


@group.command("run")
def run(
    ctx: typer.Context,
    target: Annotated[str, typer.Option("--target", help="all, database or app-data.")] = "all",
    kind: Annotated[
        str, typer.Option("--kind", help="Database backup kind: full, diff or incr.")
    ] = "full",
) -> None:
    """Take a backup now, then apply the retention."""
    from deployops.cli._recovery import app_data_paths, build_database, build_restic
    from deployops.domain.backup import BackupTarget

    app = get_app(ctx)
    env = app.environment_name()
    done = []
    for t in _targets(target):
        if t == "config":
            from deployops.cli._recovery import build_config_history

            commit = build_config_history(app).record("backup run")
            done.append(
                {
                    "target": "config",
                    "id": (commit or "unchanged")[:12],
                    "kind": "git",
                    "finished_at": "",
                    "size_bytes": 0,
                    "added_bytes": 0,
                }
            )
            continue
        if t == "database":
            app.info(f"database: {kind} backup")
            done.append(_point(build_database(app, env).backup(kind)))
        else:
            repo = build_restic(app, env)
            repo.init()
            app.info("application data: incremental backup")
            done.append(_point(repo.backup(app_data_paths(app), tags=["deployops"])))
            policy = app.project.backups.policy(BackupTarget.APP_DATA)
            repo.forget(policy.retention_s)
    if app.json:
        app.emit({"backups": done})
        return
    for d in done:
        app.console.print(
            f"{d['target']}: {d['kind']} {d['id']} done, {d['added_bytes']} new bytes "
            f"of {d['size_bytes']}"
        )


@group.command("list")
def list_(
    ctx: typer.Context,
    target: Annotated[str, typer.Option("--target", help="all, database or app-data.")] = "all",
) -> None:
    """Restorable points of each target and how fresh the newest is against its RPO."""
    from deployops.cli._recovery import build_database, build_restic
    from deployops.clock import SystemClock
    from deployops.domain.backup import BackupTarget, freshness

    app = get_app(ctx)
    env = app.environment_name()
    now = SystemClock().now()
    out: dict[str, Any] = {}
    for t in _targets(target):
        if t == "config":
            continue  # deployops restore config --list shows the config history
        if t == "database":
            points = build_database(app, env).backups()
            policy = app.project.backups.policy(BackupTarget.DATABASE)
        else:
            repo = build_restic(app, env)
            points = repo.snapshots() if repo.exists() else []
            policy = app.project.backups.policy(BackupTarget.APP_DATA)
        fresh = freshness(policy, newest=points[-1].finished_at if points else None, now=now)
        out[t] = {
            "points": [_point(p) for p in points],
            "fresh": fresh.ok,
            "age_seconds": fresh.age_s,
            "allowed_seconds": fresh.allowed_s,
        }
    if app.json:
        app.emit(out)
        return
    for t, doc in out.items():
        app.console.print(f"{t}: {len(doc['points'])} restorable point(s)")
        for p in doc["points"]:
            app.console.print(f"  {p['id']}  {p['kind']}  {p['finished_at']}  {p['size_bytes']} B")
        state = "fresh" if doc["fresh"] else "STALE"
        age = "-" if doc["age_seconds"] is None else f"{doc['age_seconds']:.0f}s"
        app.console.print(f"  newest is {age} old ({state}; allowed {doc['allowed_seconds']:.0f}s)")
    _ = fmt_time


@group.command("test")
def test(ctx: typer.Context) -> None:
    """A real test restore: the latest database backup into a scratch instance, checked and
    removed; the repository verified; application data read back in part. Exit 1 on a
    problem (recorded either way)."""
    from deployops.cli._recovery import build_database, build_restic
    from deployops.engine.testrestore import run_test_restore

    app = get_app(ctx)
    env = app.environment_name()
    result = run_test_restore(
        database=build_database(app, env), repo=build_restic(app, env), progress=app.info
    )
    _record(app, env, result)
    if app.json:
        app.emit(result)
    else:
        for line in result["lines"]:
            app.console.print(line)
    if not result["ok"]:
        raise typer.Exit(1)


def _record(app: App, env: str, result: dict[str, Any]) -> None:
    from deployops.clock import SystemClock
    from deployops.store import EventRecord

    app.store.add_event(
        EventRecord(
            ts=SystemClock().now(),
            kind="backup.test_restore",
            level="info" if result["ok"] else "warning",
            message="test restore " + ("passed" if result["ok"] else "found problems"),
            environment=env,
            data={"problems": "; ".join(result["problems"])},
        )
    )


@group.command("freshness")
def freshness_(ctx: typer.Context) -> None:
    """The freshness alarm: when the newest restorable point of a target is older than its
    RPO allows, a warning goes out through the notification routes. Exit 1 when stale (run it
    from cron or the controller's schedule)."""
    from deployops.cli._recovery import build_database, build_restic
    from deployops.clock import SystemClock
    from deployops.domain.backup import BackupTarget, freshness
    from deployops.engine.events import Notice
    from deployops.errors import DeployopsError
    from deployops.wiring import build_notify

    app = get_app(ctx)
    env = app.environment_name()
    clock = SystemClock()
    now = clock.now()
    rows = []
    for target in (BackupTarget.DATABASE, BackupTarget.APP_DATA):
        policy = app.project.backups.policy(target)
        try:
            if target is BackupTarget.DATABASE:
                db = build_database(app, env)
                archived = db.archived_until() if db.primary_id() else None
                points = db.backups()
                stamps = [p.finished_at for p in points] + ([archived] if archived else [])
                newest: datetime | None = max(stamps) if points else None
            else:
                repo = build_restic(app, env)
                snaps = repo.snapshots() if repo.exists() else []
                newest = snaps[-1].finished_at if snaps else None
        except DeployopsError as exc:
            rows.append({"target": target.value, "ok": False, "error": exc.message})
            continue
        f = freshness(policy, newest=newest, now=now)
        rows.append(
            {
                "target": target.value,
                "ok": f.ok,
                "newest": newest.isoformat() if newest else None,
                "age_seconds": f.age_s,
                "allowed_seconds": f.allowed_s,
                "text": f.describe(),
            }
        )
    stale = [r for r in rows if not r["ok"]]
    notify = build_notify(app.project, env, app.store, clock)
    for r in stale:
        notify(
            Notice(
                severity="warning",
                kind="backup.stale",
                title=f"Backups of {r['target']} are stale in {env}",
                text=str(r.get("text") or r.get("error")),
                dedup_key=f"backup-stale:{env}:{r['target']}",
                fields={"environment": env, "target": str(r["target"])},
            )
        )
    if app.json:
        app.emit({"environment": env, "targets": rows, "stale": len(stale)})
    else:
        for r in rows:
            app.console.print(str(r.get("text") or f"{r['target']}: {r.get('error')}"))
    if stale:
        raise typer.Exit(1)
