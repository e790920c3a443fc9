"""``deployops cleanup``: old target groups scheduled for deletion, and deleting those due."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from deployops.cli._common import fmt_time, get_app

CLEANUP_HELP = """List the old target groups scheduled for deletion, and delete those due.

A blue-green deploy keeps the previous colour's target group for
blue_green.target_group_retention (24 h by default), then deletes it. `deployops serve` and
the next deploy of the service do that on time; this command does it on demand. Each
deletion takes the service's deploy lock, and a group that still has traffic or running tasks
is left alone.

Exit codes: 0 every due deletion ran, was not needed, or waits for a held lock; 1 one failed
or the platform could not be reached (it stays scheduled).

Examples:

  deployops cleanup -e staging

  deployops cleanup -e production --dry-run

  deployops cleanup -e staging --service web -o json
"""


def register(app: typer.Typer) -> None:
    app.command("cleanup", help=CLEANUP_HELP)(cleanup)


def cleanup(
    ctx: typer.Context,
    service: Annotated[
        str | None, typer.Option("--service", envvar="SERVICE", help="Only this service.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what is scheduled; delete nothing.")
    ] = False,
) -> None:
    from deployops.clock import SystemClock
    from deployops.engine.cleanup import run_due_deletions, scheduled_deletions
    from deployops.engine.operation import Env, Ports
    from deployops.errors import DeploymentError
    from deployops.wiring import whoami

    app = get_app(ctx)
    env_name = app.environment_name()
    svc = app.service_name(service) if service else None
    clock = SystemClock()
    now = clock.now()
    scheduled = scheduled_deletions(app.store, environment=env_name, service=svc)
    listed = [
        {
            "job": j.id,
            "service": j.payload.get("service", ""),
            "target_group": j.payload.get("target_group", ""),
            "deployment_id": j.payload.get("deployment_id", ""),
            "due_at": j.due_at.isoformat(),
            "due": j.due_at <= now,
        }
        for j in scheduled
    ]
    ran: list[dict[str, Any]] = []
    if not dry_run and any(row["due"] for row in listed):
        from deployops.drivers import build_platform

        plat = build_platform(app.project, env_name, clock=clock, store=app.store)
        env = Env(
            ports=Ports(
                compute=plat.compute,
                traffic=plat.traffic,
                metrics=plat.metrics,
                prober=plat.prober,
            ),
            store=app.store,
            clock=clock,
        )
        for job, outcome in run_due_deletions(
            env, environment=env_name, service=svc, owner=whoami()
        ):
            ran.append(
                {
                    "job": job.id,
                    "target_group": job.payload.get("target_group", ""),
                    "status": outcome.status,
                    "result": outcome.result,
                    "hint": outcome.hint,
                }
            )
    failed = [r for r in ran if r["status"] in ("failed", "unavailable")]
    if app.json:
        app.emit({"environment": env_name, "scheduled": listed, "ran": ran, "dry_run": dry_run})
    else:
        c = app.console
        if not listed:
            c.print(f"no target group is scheduled for deletion in {env_name}")
        for job, row in zip(scheduled, listed, strict=True):
            when = "due now" if row["due"] else f"due {fmt_time(job.due_at)}"
            c.print(f"  {row['target_group']:24} {when:28} (after {row['deployment_id']})")
        for r in ran:
            c.print(f"  {r['status']:8} {r['result']}")
        if dry_run:
            c.print("dry run: nothing was deleted")
    if failed:
        hints = [str(r["hint"]) for r in failed if r["hint"]]
        raise DeploymentError(
            "; ".join(str(r["result"]) for r in failed),
            hint=(hints[0] + "; then " if hints else "")
            + "run `deployops cleanup` again"
            + (
                " (a deletion that could not reach the platform stays scheduled)"
                if any(r["status"] == "unavailable" for r in failed)
                else ""
            ),
        )
