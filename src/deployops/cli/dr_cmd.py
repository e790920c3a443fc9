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


def drill_site(app: App, env: str, settings: Any) -> Any:
    """What a drill's steps act through besides the platform: the service's marker rows,
    the notification routes, the scenario's injection (frozen into the plan's settings: the
    primary it kills, the standby it starts)."""
    from deployops.cli._recovery import build_database, drills_dir
    from deployops.domain.backup import DrillScenario
    from deployops.engine.drill import DrillSite

    db = build_database(app, env)
    service = str(settings["service"])
    old_primary = str(settings.get("old_primary") or "")
    standby_id = str(settings.get("standby_id") or "")
    port = app.project.services[service].port

    def prepare(sc: DrillScenario) -> dict[str, Any]:
        done: dict[str, Any] = {}
        if sc is DrillScenario.SECURITY_INCIDENT:
            return done  # nothing to restore from: the recovery is rotation and redeploy
        if not db.backups():
            app.info("  no database backup yet: taking a full backup first")
            done["backup"] = db.backup("full").id
        if sc is DrillScenario.REGION_FAILURE:
            app.info("  starting the second site's standby (streaming from the primary)")
            done["standby"] = db.start_standby(standby_id).id
        return done

    def inject(sc: DrillScenario) -> dict[str, Any]:
        if sc is DrillScenario.SECURITY_INCIDENT:
            # the incident is declared, not caused: every managed secret counts as leaked
            return {"incident": "every managed secret is assumed leaked"}
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

    return DrillSite(
        markers=_HttpMarkers(f"http://127.0.0.1:{port}"),
        notify=_notifier(app, env),
        inject=inject,
        prepare=prepare,
        make_durable=db.archived_until,
        reports_dir=drills_dir(app),
        rotate_secrets=_secret_rotation(app, env),
    )


def _secret_rotation(app: App, env: str) -> Any:
    """``rotate(actor) -> {secret: rotation id}`` over every managed secret of the
    environment, or ``None`` when its store cannot rotate. Rotations left unfinished by a
    dead process are resumed first; replicas move in the drill's own redeploy step."""
    from deployops.clock import SystemClock
    from deployops.engine.rotation import rotation_lock_key
    from deployops.errors import UnsupportedError
    from deployops.wiring import build_rotator, owner_alive, whoami

    clock = SystemClock()
    try:
        rotator = build_rotator(
            app.project, env, store=app.store, clock=clock, owner=whoami(), progress=app.info
        )
    except UnsupportedError:
        return None
    managed = app.project.secrets.managed_secrets()

    def rotate(actor: str) -> dict[str, Any]:
        for rec in app.store.rotations(environment=env, status="running"):
            held = app.store.get_lock(rotation_lock_key(env, rec.secret))
            if held is None or not owner_alive(held.owner):
                rotator.resume(rec.id, actor=actor, owner_alive=owner_alive)
        done: dict[str, Any] = {}
        for secret in managed:
            rec = rotator.rotate(secret, actor=actor)
            app.info(f"  {secret.name}: rotated ({rec.id})")
            done[secret.name] = rec.id
        return done

    return rotate


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
    Exit 0 when every target was met, 1 otherwise; the report is written either way.
    Interrupted, it continues with `deployops resume ID`."""
    from deployops.cli._recovery import build_database, build_recovery_runner
    from deployops.clock import SystemClock
    from deployops.domain.backup import BackupTarget, DrillScenario, RestoreTarget
    from deployops.engine.drill import (
        DRILL_KIND,
        DrillSite,
        RedeployService,
        RotateAllSecrets,
        plan_drill,
    )
    from deployops.engine.operation import NewOperation
    from deployops.engine.restore import PromoteDatabase, RepointApplication, db_restore_steps
    from deployops.errors import ConfigError, DeployopsError
    from deployops.ids import new_id
    from deployops.wiring import whoami

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
    drill_id = str(new_id(DRILL_KIND.id_prefix, clock.now())).lower()
    db = build_database(app, env, clock)
    policy = app.project.backups.policy(BackupTarget.DATABASE)
    notes: list[str] = []
    if reason:
        notes.append(f"reason: {reason}")

    standby_id = f"{drill_id}-standby"
    recovery: tuple[Any, ...]
    if sc is DrillScenario.SECURITY_INCIDENT and _secret_rotation(app, env) is None:
        raise ConfigError(
            f"the secret store of {env} cannot rotate, so the security-incident drill has "
            "nothing to recover with",
            path=f"secrets.stores.{env}",
            hint="give the environment a rotating store (type: encrypted-file, "
            "aws-secrets-manager or kubernetes) under secrets.stores in deployops.yaml",
        )
    if sc is DrillScenario.SECURITY_INCIDENT:
        notes.append(
            "the incident is declared, not caused: every managed secret counts as leaked; the "
            "recovery rotates each (deployops secrets rotate) and replaces every replica; the "
            "RTO runs from the declaration to serving on the new values"
        )
        recovery = (
            RotateAllSecrets(drill_id=drill_id),
            RedeployService(service=svc, drill_id=drill_id, timeout_s=wait),
        )
    elif sc is DrillScenario.REGION_FAILURE:
        notes.append(
            "locally the second site is a standby PostgreSQL streaming from the primary; the "
            "failover repoints the application's replicas (the front listener keeps its "
            "address); on AWS this is replica promotion plus the Route 53 failover record"
        )
        recovery = (
            PromoteDatabase(instance_id=standby_id),
            RepointApplication(service=svc, instance_id=standby_id, timeout_s=wait),
        )
    else:
        recovery = db_restore_steps(
            service=svc,
            target=RestoreTarget(),
            instance_id=f"{drill_id}-restore",
            repoint=True,
            repoint_timeout_s=wait,
            # data-corruption restores to just before the bad write
            to_time_from="@failure_at" if sc is DrillScenario.DATA_CORRUPTION else "",
        )
    plan = plan_drill(
        drill_id=drill_id,
        scenario=sc,
        service=svc,
        recovery=recovery,
        wait_s=wait,
        rto_target_s=policy.rto_s,
        rpo_target_s=policy.rpo_s,
        runbook=RUNBOOKS[sc.value],
        notes=notes,
        reason=reason,
    ).with_settings(old_primary=db.primary_id() or "", standby_id=standby_id)
    site = drill_site(app, env, plan.settings)
    runner, _ = build_recovery_runner(app, env, clock=clock, extra_ports={DrillSite: site})
    app.info(f"drill {drill_id}: {sc.value} in {env}")
    try:
        runner.start(
            NewOperation(
                kind=DRILL_KIND,
                environment=env,
                target=svc,
                owner=whoami(),
                plan=plan,
                operation_id=drill_id,
                summary=f"drill {sc.value} {drill_id}",
            )
        )
    except DeployopsError:
        op = app.store.get_operation(drill_id)
        if op is None or "report_json" not in op.detail:
            raise
    show_drill(app, drill_id)


def show_drill(app: App, drill_id: str) -> None:
    """Print a drill's report (JSON with the report's paths, or its Markdown); exit 1 when
    a target was missed."""
    import json
    from pathlib import Path

    from deployops.errors import DeploymentError

    op = app.store.get_operation(drill_id)
    js = op.detail.get("report_json") if op is not None else None
    if not js:
        status = op.status if op is not None else "unknown"
        raise DeploymentError(
            f"drill {drill_id} has no report ({status})",
            hint=f"`deployops deployments show {drill_id}` has its steps",
        )
    doc = json.loads(Path(js).read_text())
    md = str(op.detail.get("report_markdown", "")) if op is not None else ""
    if app.json:
        app.emit({**doc, "report_markdown": md, "report_json": js})
    else:
        app.console.print(Path(md).read_text() if md else json.dumps(doc, indent=2))
        app.console.print(f"report: {md}")
    if not doc["outcome"]["passed"]:
        raise typer.Exit(1)


@group.command("status")
def status(ctx: typer.Context) -> None:
    """The last drill of each scenario, its result and when the next is due; when the next
    test restore is due; the freshness of every backup target against its RPO (what the
    controller of `deployops serve` schedules)."""
    import json

    from deployops.cli._recovery import build_dr_schedule, drills_dir
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
    schedule = build_dr_schedule(app, env, SystemClock())
    tr = next((i for i in schedule.due() if i.what == "test-restore"), None)
    test_restore = tr.to_json() if tr else None
    fresh = schedule.freshness_rows()
    if app.json:
        app.emit(
            {"environment": env, "drills": rows, "test_restore": test_restore, "freshness": fresh}
        )
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
    if test_restore is not None:
        done = test_restore["last_at"] or "never"
        when = "due now" if test_restore["overdue"] else f"next due {test_restore['next_due']}"
        app.console.print(f"test restore: last {done}; {when}")
    for f in fresh:
        app.console.print(f"backups {'fresh' if f['ok'] else 'STALE'}: {f['text']}")


def _change_batch(text: str) -> list[tuple[str, str]]:
    """(record, target) of each UPSERT / CREATE in a Route 53 change batch (the guide's
    ``dns-failover.json``)."""
    import json
    from pathlib import Path

    from deployops.errors import ConfigError

    path = Path(text.removeprefix("file://"))
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read the change batch {text}: {exc}",
            path="--change-batch",
            hint='pass file://dns-failover.json with {"Changes": [{"Action": "UPSERT", '
            '"ResourceRecordSet": {...}}]}',
        ) from None
    out = []
    for change in doc.get("Changes", []):
        rrs = change.get("ResourceRecordSet", {})
        if change.get("Action") not in ("UPSERT", "CREATE") or not rrs.get("Name"):
            continue
        values = [r.get("Value") for r in rrs.get("ResourceRecords", [])]
        target = (rrs.get("AliasTarget") or {}).get("DNSName") or (values[0] if values else "")
        if target:
            out.append((str(rrs["Name"]).rstrip("."), str(target).rstrip(".")))
    if not out:
        raise ConfigError(
            f"the change batch {text} has no UPSERT or CREATE of a record with a value",
            path="--change-batch",
            hint='each change: {"Action": "UPSERT", "ResourceRecordSet": {"Name": ..., '
            '"ResourceRecords": [{"Value": ...}]}}',
        )
    return out


@group.command("dns-failover")
def dns_failover(
    ctx: typer.Context,
    hosted_zone_id: Annotated[
        str | None, typer.Option("--hosted-zone-id", help="Route 53 hosted zone (AWS).")
    ] = None,
    change_batch: Annotated[
        str | None,
        typer.Option("--change-batch", help="file://dns-failover.json: the records to move."),
    ] = None,
    record: Annotated[
        str | None,
        typer.Option("--record", help="The name to move (locally a production listener)."),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Where it points next (locally a target group).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the change only.")] = False,
) -> None:
    """Point the name clients use at the other site: a Route 53 record change on AWS (the
    guide's --hosted-zone-id and --change-batch), the front listener locally (--record
    web-prod --target web-green). Each change is read back.

    Examples:

      deployops -e production dr dns-failover --hosted-zone-id Z123 --change-batch
      file://dns-failover.json

      deployops dr dns-failover --record web-prod --target web-green --dry-run
    """
    from deployops.errors import ConfigError

    app = get_app(ctx)
    env = app.environment_name()
    if change_batch:
        changes = _change_batch(change_batch)
    elif record and target:
        changes = [(record, target)]
    else:
        raise ConfigError(
            "which record, pointed where?",
            path="dr dns-failover",
            hint="--hosted-zone-id Z123 --change-batch file://dns-failover.json, or "
            "--record web-prod --target web-green",
        )
    dns, lock_for = _dns(app, env, hosted_zone_id)
    rows = []
    for name, to in changes:
        before = dns.current(name)
        after = before
        if not dry_run and before != to:
            with lock_for(name):
                after = dns.point(name, to)
        rows.append({"record": name, "before": before, "target": to, "after": after})
    if app.json:
        app.emit({"environment": env, "dry_run": dry_run, "changes": rows})
        return
    for r in rows:
        verb = "would point" if dry_run else "points"
        app.console.print(f"{r['record']}: {r['before']} -> {verb} at {r['target']}")


def _dns(app: App, env: str, hosted_zone_id: str | None) -> tuple[Any, Any]:
    """The environment's Dns port and a lock for a change of one record: Route 53 with a
    hosted zone; locally the front listeners (switched under the service's deploy lock)."""
    import contextlib

    if hosted_zone_id:
        from deployops.drivers.aws._session import AwsSession, AwsSettings
        from deployops.drivers.aws.route53 import Route53Dns

        aws = app.project.environment(env).aws
        session = AwsSession(
            AwsSettings(
                region=aws.region,
                profile=aws.profile,
                role_arn=aws.role_arn,
                endpoint_url=aws.endpoint_url,
            )
        )
        route53 = Route53Dns(client=session.client("route53"), hosted_zone_id=hosted_zone_id)
        return route53, lambda _name: contextlib.nullcontext()
    from deployops.clock import SystemClock
    from deployops.domain.names import lock_key, service_of
    from deployops.drivers import build_platform
    from deployops.drivers.local.dns import ListenerDns
    from deployops.wiring import whoami

    clock = SystemClock()
    plat = build_platform(app.project, env, clock=clock, store=app.store)
    owner = whoami()

    @contextlib.contextmanager
    def locked(name: str) -> Any:
        key = lock_key(env, service_of(name))
        app.store.acquire_lock(key, owner=owner, reason=f"dns failover {name}", now=clock.now())
        try:
            yield
        finally:
            app.store.release_lock(key, owner=owner)

    return ListenerDns(traffic=plat.traffic), locked
