"""``deployops dr drill SCENARIO`` and ``deployops dr status`` (DR-7)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import typer

from deployops.cli._common import get_app
from deployops.cli.app import App

group = typer.Typer(
    help=(
        "Disaster-recovery drills with measured recovery time and data loss, and when the "
        "next ones are due.\n\n"
        "Scenarios: db-loss (the database and its data directory are gone: restore the newest "
        "backup plus archived WAL into a new instance), data-corruption (a bad write: restore "
        "to just before it), region-failure (the primary site is lost: promote the standby "
        "and repoint), security-incident (rotate every secret and redeploy).\n\n"
        "Examples:\n\n"
        "  deployops dr drill db-loss\n\n"
        "  deployops dr drill region-failure -o json\n\n"
        "  deployops dr drill db-loss -e production --i-understand --reason 'Q1 drill'\n\n"
        "  deployops dr status"
    ),
    no_args_is_help=True,
)

PRODUCTION = "production"
RUNBOOKS = {
    "db-loss": "docs/runbooks/drill-db-loss.md",
    "data-corruption": "docs/runbooks/drill-data-corruption.md",
    "region-failure": "docs/runbooks/drill-region-failure.md",
    "security-incident": "docs/runbooks/drill-security-incident.md",
}


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="dr")


class _HttpMarkers:
    """Marker rows through the application's production listener."""

    def __init__(self, base: str) -> None:
        import httpx

        self.base = base
        self.http = httpx.Client(timeout=3.0)

    def write(self, body: str) -> datetime | None:
        import httpx

        try:
            r = self.http.post(self.base + "/items", json={"body": body})
        except httpx.HTTPError:
            return None
        if r.status_code != 201:
            return None
        return datetime.fromisoformat(r.json()["created_at"])

    def present(self, prefix: str) -> list[tuple[str, datetime]]:
        out: list[tuple[str, datetime]] = []
        after = 0
        while True:
            r = self.http.get(self.base + "/items", params={"after": after, "limit": 1000})
            r.raise_for_status()
            items = r.json()["items"]
            if not items:
                return out
            for i in items:
                if str(i["body"]).startswith(prefix):
                    out.append((str(i["body"]), datetime.fromisoformat(i["created_at"])))
            after = int(items[-1]["id"])


def _notifier(app: App, env: str) -> Any:
    """``notify(severity, title, text) -> channels that confirmed delivery``."""
    from deployops.clock import SystemClock
    from deployops.notify.router import Notice

    if not app.project.notifications:
        return lambda _s, _t, _x: []
    from deployops.config.appconfig import paths_for
    from deployops.config.appconfig.loader import default_secret_store
    from deployops.notify.router import build_router, store_recorder

    clock = SystemClock()
    router = build_router(
        app.project.notification_settings(),
        resolve=default_secret_store(paths_for(app.project), env).get,
        clock=clock,
        record=store_recorder(app.store, clock),
        strict=False,
    )

    def notify(severity: str, title: str, text: str) -> Sequence[str]:
        notice = Notice(
            severity=severity,  # type: ignore[arg-type]
            kind="drill",
            title=title,
            text=text,
            dedup_key=f"drill:{env}:{title}",
            fields={"environment": env},
        )
        return [d.channel for d in router.notify(notice) if d.ok]

    return notify


@group.command("drill")
def drill(
    ctx: typer.Context,
    scenario: Annotated[
        str, typer.Argument(help="db-loss, data-corruption, region-failure, security-incident.")
    ],
    service: Annotated[str | None, typer.Option("--service", help="Service to measure.")] = None,
    i_understand: Annotated[
        bool,
        typer.Option("--i-understand", help="Required in production: the drill breaks things."),
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the report).")] = "",
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for the service to serve again.")
    ] = 600.0,
) -> None:
    """Inject the failure, recover, and report the achieved RTO and RPO against the targets.
    Exit 0 when every target was met, 1 otherwise; the report is written either way."""
    from deployops.cli._recovery import build_recovery_runner, drills_dir
    from deployops.clock import SystemClock
    from deployops.domain.backup import BackupTarget, DrillScenario, RestoreTarget
    from deployops.engine.drill import run_drill, write_report
    from deployops.engine.restore import plan_db_restore
    from deployops.errors import ConfigError
    from deployops.ids import new_id

    app = get_app(ctx)
    env = app.environment_name()
    try:
        sc = DrillScenario(scenario)
    except ValueError:
        raise ConfigError(
            f"unknown drill scenario {scenario!r}",
            path="SCENARIO",
            hint="use one of: " + ", ".join(s.value for s in DrillScenario),
        ) from None
    if env == PRODUCTION and not (i_understand and reason.strip()):
        raise ConfigError(
            "a drill in production breaks the live service on purpose",
            path="--i-understand",
            hint=f"deployops dr drill {sc.value} -e production --i-understand --reason 'why'",
        )
    svc = app.service_name(service)
    clock = SystemClock()
    drill_id = str(new_id("drl", clock.now())).lower()
    runner, rctx = build_recovery_runner(
        app, env, with_platform=True, progress=lambda m: app.info(f"  {m}"), clock=clock
    )
    db = rctx.database
    assert db is not None
    from deployops.drivers.local.postgres import LocalPostgres

    assert isinstance(db, LocalPostgres)
    policy = app.project.backups.policy(BackupTarget.DATABASE)
    port = app.project.services[svc].port
    markers = _HttpMarkers(f"http://127.0.0.1:{port}")
    notes: list[str] = []
    if reason:
        notes.append(f"reason: {reason}")
    old_primary = db.primary_id()

    if sc is DrillScenario.SECURITY_INCIDENT:
        _security_incident_unavailable(app, env, drill_id, sc, policy, markers, clock)
        return

    if not db.backups():
        app.info("  no database backup yet: taking a full backup first")
        db.backup("full")
    standby_id = f"{drill_id}-standby"
    if sc is DrillScenario.REGION_FAILURE:
        app.info("  starting the second site's standby (streaming from the primary)")
        db.start_standby(standby_id)
        notes.append(
            "locally the second site is a standby PostgreSQL streaming from the primary; the "
            "failover repoints the application's replicas (the front listener keeps its "
            "address); on AWS this is replica promotion plus the Route 53 failover record"
        )

    def inject() -> dict[str, Any]:
        assert old_primary is not None
        if sc is DrillScenario.DATA_CORRUPTION:
            import psycopg

            with psycopg.connect(db.dsn(db.primary(), db.database), autocommit=True) as conn:
                cur = conn.execute("UPDATE items SET body = 'CORRUPTED' WHERE body LIKE 'drl-%'")
                return {"bad_write": f"UPDATE of {cur.rowcount} rows"}
        db.kill(old_primary)
        if sc is DrillScenario.DB_LOSS:
            shutil.rmtree(db.layout.data(old_primary), ignore_errors=True)
            return {"killed": old_primary, "data_directory": "deleted"}
        return {"killed": old_primary, "site": "primary site lost"}

    def recover(failure_at: datetime) -> dict[str, Any]:
        if sc is DrillScenario.REGION_FAILURE:
            from deployops.engine.restore import PromoteDatabase, RecoveryPlan, RepointApplication

            plan = RecoveryPlan(
                operation_id=f"{drill_id}-failover",
                kind="failover",
                service=svc,
                steps=(
                    PromoteDatabase(instance_id=standby_id),
                    RepointApplication(service=svc, instance_id=standby_id, timeout_s=wait),
                ),
                reason=f"drill {drill_id}",
            )
        else:
            target = (
                RestoreTarget(to_time=failure_at)
                if sc is DrillScenario.DATA_CORRUPTION
                else RestoreTarget()
            )
            op = f"{drill_id}-restore"
            plan = plan_db_restore(
                operation_id=op,
                service=svc,
                target=target,
                instance_id=op,
                repoint=True,
                repoint_timeout_s=wait,
                reason=f"drill {drill_id}",
            )
        doc = runner.run(plan)
        return {"operation": plan.operation_id, "status": doc["status"]}

    app.info(f"drill {drill_id}: {sc.value} in {env}")
    report = run_drill(
        drill_id=drill_id,
        scenario=sc,
        environment=env,
        clock=clock,
        markers=markers,
        inject=inject,
        recover=recover,
        notify=_notifier(app, env),
        rto_target_s=policy.rto_s,
        rpo_target_s=policy.rpo_s,
        wait_serving_s=wait,
        notes=notes,
        runbook=RUNBOOKS[sc.value],
        progress=lambda m: app.info(f"  {m}"),
        make_durable=db.archived_until,
    )
    _finish(app, env, report, drills_dir(app), write_report)


def _finish(app: App, env: str, report: Any, folder: Any, write_report: Any) -> None:
    from deployops.clock import SystemClock
    from deployops.store import EventRecord

    md, js = write_report(report, folder)
    o = report.outcome
    app.store.add_event(
        EventRecord(
            ts=SystemClock().now(),
            kind="drill.finished",
            level="info" if o.passed else "warning",
            message=f"drill {report.drill_id} {report.scenario.value}: "
            + ("passed" if o.passed else "failed"),
            environment=env,
            data={"report": str(js), "rto_s": str(o.rto_s), "rpo_s": str(o.rpo_s)},
        )
    )
    if app.json:
        app.emit({**report.to_json(), "report_markdown": str(md), "report_json": str(js)})
    else:
        from deployops.engine.drill import render_markdown

        app.console.print(render_markdown(report))
        app.console.print(f"report: {md}")
    if not o.passed:
        raise typer.Exit(1)


def _security_incident_unavailable(
    app: App, env: str, drill_id: str, sc: Any, policy: Any, markers: Any, clock: Any
) -> None:
    """The security-incident drill needs secret rotation (rotate every secret, redeploy);
    this build has no rotation command, so the drill reports that instead of pretending."""
    from deployops.cli._recovery import drills_dir
    from deployops.domain.backup import judge_drill
    from deployops.engine.drill import DrillReport, write_report

    now = clock.now()
    report = DrillReport(
        drill_id=drill_id,
        scenario=sc,
        environment=env,
        started_at=now,
        failure_at=None,
        recovered_at=None,
        outcome=judge_drill(
            sc,
            rto_s=None,
            rpo_s=None,
            rto_target_s=policy.rto_s,
            rpo_target_s=policy.rpo_s,
            notified=False,
            problems=[
                "secret rotation is not available in this build: the drill cannot rotate "
                "every secret and redeploy, so nothing was injected"
            ],
        ),
        recovery={},
        markers_written=0,
        markers_committed=0,
        last_committed_before_failure=None,
        last_present_after=None,
        notifications=[],
        runbook=RUNBOOKS[sc.value],
    )
    _ = markers
    _finish(app, env, report, drills_dir(app), write_report)


@group.command("status")
def status(ctx: typer.Context) -> None:
    """The last drill of each scenario, its result and when the next is due; the freshness
    of every backup target against its RPO."""
    import json

    from deployops.cli._recovery import drills_dir
    from deployops.clock import SystemClock
    from deployops.domain.backup import DrillScenario, drill_due

    app = get_app(ctx)
    env = app.environment_name()
    now = SystemClock().now()
    last: dict[str, dict[str, Any]] = {}
    folder = drills_dir(app)
    for path in sorted(folder.glob("drl-*.json")) if folder.is_dir() else []:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if doc.get("environment") == env:
            last[doc["scenario"]] = doc
    rows = []
    every = app.project.backups.drills.every
    for sc in DrillScenario:
        doc = last.get(sc.value)
        at = datetime.fromisoformat(doc["started_at"]) if doc else None
        due = drill_due(at, now=now, every_s=every)
        rows.append(
            {
                "scenario": sc.value,
                "last_drill": doc["drill_id"] if doc else None,
                "last_at": at.isoformat() if at else None,
                "passed": doc["outcome"]["passed"] if doc else None,
                "rto_s": doc["outcome"]["rto_s"] if doc else None,
                "rpo_s": doc["outcome"]["rpo_s"] if doc else None,
                "next_due": due.isoformat(),
                "overdue": due <= now,
            }
        )
    if app.json:
        app.emit({"environment": env, "drills": rows})
        return
    for r in rows:
        if r["last_drill"] is None:
            app.console.print(f"{r['scenario']}: never drilled; due now")
            continue
        verdict = "passed" if r["passed"] else "FAILED"
        when = "OVERDUE" if r["overdue"] else f"next due {r['next_due']}"
        app.console.print(
            f"{r['scenario']}: {r['last_drill']} {verdict} (RTO {r['rto_s']} s, RPO "
            f"{r['rpo_s']} s); {when}"
        )
