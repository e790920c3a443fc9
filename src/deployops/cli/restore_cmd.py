"""``deployops restore db|app-data|resume``: recovery into new instances (DR-2, DR-4)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from deployops.cli._common import get_app
from deployops.cli.app import App

group = typer.Typer(
    help=(
        "Restore the database to a point in time or a backup, into a NEW instance that is "
        "verified before the application is moved to it; restore application data.\n\n"
        "Examples:\n\n"
        "  deployops restore db --to-time '2026-03-01T09:41:00Z'\n\n"
        "  deployops restore db --snapshot 20260301-094100F --no-repoint\n\n"
        "  deployops restore app-data --snapshot 4f2a9c1e --into /srv/restore\n\n"
        "  deployops resume rst-20260301-094500-1a2b"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="restore")


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without a zone is UTC."""
    from deployops.errors import ConfigError

    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{text!r} is not a time",
            path="--to-time",
            hint="write it like 2026-03-01T09:41:00Z (ISO 8601, UTC when no zone is given)",
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def operation_doc(app: App, op_id: str) -> dict[str, Any]:
    """A restore as the command shows it: its plan, status and each step's result."""
    from deployops.domain.plan import Plan

    op = app.store.get_operation(op_id)
    assert op is not None
    plan = Plan.from_record(op.plan)
    done = {s.seq: s for s in app.store.steps_for(op.id)}
    results: list[dict[str, Any] | None] = []
    for seq in range(len(plan.steps)):
        step = done.get(seq)
        ok = step is not None and step.status == "succeeded"
        results.append({"at": step.finished_at, **step.result} if ok and step else None)
    doc = _plan_doc(op.id, plan, status=op.status)
    doc["results"] = results
    if op.error:
        doc["error"] = op.error
    return doc


def _plan_doc(op_id: str, plan: Any, *, status: str) -> dict[str, Any]:
    return {
        "id": op_id,
        "plan": {
            "operation_id": op_id,
            "kind": plan.strategy,
            "service": plan.settings.get("service", ""),
            "reason": plan.settings.get("reason", ""),
            "steps": [
                {"type": s.kind, **{k: v for k, v in s.to_json().items() if k != "step"}}
                for s in plan.steps
            ],
        },
        "status": status,
        "results": [None] * len(plan.steps),
    }


def show_restore(app: App, doc: dict[str, Any]) -> None:
    if app.json:
        app.emit(doc)
        return
    plan = doc["plan"]
    app.console.print(f"{plan['kind']} {plan['operation_id']}: {doc['status']}")
    for step, result in zip(plan["steps"], doc["results"], strict=True):
        mark = "done" if result is not None else "pending"
        extra = ""
        if result:
            keys = ("instance", "host", "port", "items", "service", "task_definition")
            extra = " ".join(f"{k}={result[k]}" for k in keys if k in result)
        app.console.print(f"  {step['type']}: {mark} {extra}".rstrip())


def run_restore(app: App, env: str, plan: Any, *, op_id: str, target: str) -> None:
    """Run a restore plan on the environment's operation runner and show the result."""
    from deployops.cli._recovery import build_recovery_runner
    from deployops.engine.operation import NewOperation
    from deployops.engine.restore import RESTORE_KIND
    from deployops.wiring import whoami

    runner, _ = build_recovery_runner(app, env)
    runner.start(
        NewOperation(
            kind=RESTORE_KIND,
            environment=env,
            target=target,
            owner=whoami(),
            plan=plan,
            operation_id=op_id,
            summary=f"{plan.strategy} {op_id}",
        )
    )
    show_restore(app, operation_doc(app, op_id))


@group.command("db")
def db(
    ctx: typer.Context,
    to_time: Annotated[
        str | None, typer.Option("--to-time", help="Point in time (ISO 8601, UTC default).")
    ] = None,
    snapshot: Annotated[
        str | None, typer.Option("--snapshot", help="A backup id from `deployops backup list`.")
    ] = None,
    service: Annotated[str | None, typer.Option("--service", help="Service to repoint.")] = None,
    no_repoint: Annotated[
        bool,
        typer.Option("--no-repoint", help="Restore and verify only; the application stays."),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds for the rolling restart.")
    ] = 300.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan only.")] = False,
) -> None:
    """Restore the database into a new instance, verify it, then roll the application's
    replicas onto it (new DB_HOST / DB_PORT, kept for the next deploys). The running
    database is untouched until the restored one is verified. Interrupted, it continues with
    `deployops resume ID`."""
    from deployops.cli._recovery import recovery_database
    from deployops.domain.backup import RestoreTarget
    from deployops.engine.restore import plan_db_restore
    from deployops.errors import ConfigError

    app = get_app(ctx)
    env = app.environment_name()
    if to_time and snapshot:
        raise ConfigError(
            "--to-time and --snapshot exclude each other",
            path="restore db",
            hint="give one: deployops restore db --to-time T, or --snapshot ID",
        )
    target = RestoreTarget(
        to_time=parse_time(to_time) if to_time else None, backup_id=snapshot or None
    )
    svc = app.service_name(service)
    recovery_database(app, env)  # an unsupported platform is said before anything is planned
    op = _op_id("rst")
    plan = plan_db_restore(
        service=svc,
        target=target,
        instance_id=op,
        repoint=not no_repoint,
        repoint_timeout_s=timeout,
        reason=f"restore to {target.describe()}",
    )
    if dry_run:
        show_restore(app, _plan_doc(op, plan, status="planned"))
        return
    app.info(f"restore {op}: to {target.describe()}")
    run_restore(app, env, plan, op_id=op, target=svc)


@group.command("app-data")
def app_data(
    ctx: typer.Context,
    snapshot: Annotated[str, typer.Option("--snapshot", help="Snapshot id or latest.")] = "latest",
    into: Annotated[
        Path | None,
        typer.Option("--into", help="Directory to restore into (default a new folder)."),
    ] = None,
) -> None:
    """Restore application data from restic into a directory (never over the live data)."""
    from deployops.engine.restore import plan_app_data_restore

    app = get_app(ctx)
    env = app.environment_name()
    op = _op_id("rst")
    target = into or app.project.state_dir / "restores" / op
    svc = app.service_name(None)
    plan = plan_app_data_restore(service=svc, snapshot_id=snapshot, target_dir=target)
    run_restore(app, env, plan, op_id=op, target=f"{svc}-data")


@group.command("resume")
def resume(
    ctx: typer.Context,
    operation: Annotated[str, typer.Argument(help="The restore's id (rst-...).")],
) -> None:
    """Continue a restore that was interrupted, from its first unfinished step (the same as
    `deployops resume ID`)."""
    from deployops.cli._recovery import resume_recovery

    app = get_app(ctx)
    resume_recovery(app, operation)


def _op_id(prefix: str) -> str:
    from deployops.clock import SystemClock
    from deployops.ids import new_id

    return str(new_id(prefix, SystemClock().now())).lower()


@group.command("config")
def config(
    ctx: typer.Context,
    at: Annotated[
        str | None, typer.Option("--at", help="The moment whose configuration to restore.")
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="Show the recorded versions.")] = False,
) -> None:
    """Put back deployops.yaml and config/ as they were at a moment (from the config history
    in .deployops/config-history). The current files are recorded first."""
    from deployops.cli._recovery import build_config_history
    from deployops.errors import ConfigError

    app = get_app(ctx)
    history = build_config_history(app)
    if list_:
        rows = [
            {"commit": v.commit[:12], "at": v.at.isoformat(), "message": v.message}
            for v in history.versions()
        ]
        if app.json:
            app.emit(rows)
        else:
            for r in rows:
                app.console.print(f"{r['commit']}  {r['at']}  {r['message']}")
        return
    if not at:
        raise ConfigError(
            "which moment? restore config needs --at TIME",
            path="--at",
            hint="deployops restore config --list shows the recorded versions",
        )
    from deployops.engine.restore import plan_config_restore

    env = app.environment_name()
    when = parse_time(at)
    history.at(when)  # refused before anything runs when nothing was recorded by then
    op = _op_id("rst")
    run_config_restore(app, env, plan_config_restore(at=when), op_id=op)


def run_config_restore(app: App, env: str, plan: Any, *, op_id: str) -> None:
    from deployops.cli._recovery import build_recovery_runner
    from deployops.engine.operation import NewOperation
    from deployops.engine.restore import RESTORE_KIND
    from deployops.wiring import whoami

    runner, _ = build_recovery_runner(app, env, database=False)
    runner.start(
        NewOperation(
            kind=RESTORE_KIND,
            environment=env,
            target="config",
            owner=whoami(),
            plan=plan,
            operation_id=op_id,
            summary=f"restore-config {op_id}",
        )
    )
    (step,) = app.store.steps_for(op_id)
    doc = {
        "id": op_id,
        "restored": step.result["restored"],
        "recorded_at": step.result["recorded_at"],
        "files": [str(Path(p).relative_to(app.project.root)) for p in step.result["files"]],
    }
    if app.json:
        app.emit(doc)
    else:
        app.console.print(
            f"configuration of {doc['recorded_at']} ({doc['restored']}) restored: "
            + ", ".join(doc["files"])
        )
