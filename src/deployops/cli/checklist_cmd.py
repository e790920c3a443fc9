"""``deployops checklist show|sign``: the deployment checklist as gates (CHK-1..CHK-3), and
the pre-deploy gate ``deployops deploy`` runs first."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deployops.cli._common import fmt_time, get_app
from deployops.domain.names import prod_listener

if TYPE_CHECKING:
    from deployops.cli.app import App
    from deployops.config.checklist import ChecklistSettings, ResolvedItem
    from deployops.domain.access import Role
    from deployops.domain.checklist import GateOutcome, ItemVerdict
    from deployops.engine.checklist import ChecklistGate

group = typer.Typer(
    help=(
        "The deployment checklist: gates before, during and after a deploy.\n\n"
        "Automated items are judged from the reports your CI writes (tests, coverage, lint, "
        "security scans, approvals); manual items are signed off by a person. A deploy is "
        "refused while a pre-deploy item fails.\n\n"
        "Examples:\n\n"
        "  deployops checklist show -e production --version 1.4.0\n\n"
        "  deployops checklist sign rollback-plan --by alice --version 1.4.0 "
        "--note 'docs/rollback.md'\n\n"
        "  deployops checklist show dep-20261129-174501-7f3a -o json"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="checklist")


# ---------------------------------------------------------------------- identity
@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    role: Role


def caller() -> Caller:
    """Who runs this command and with which role (SEC-4). Read from ``DEPLOYOPS_USER`` (default:
    the login name) and ``DEPLOYOPS_ROLE`` (default: deployer); the one place to read it."""
    from deployops.domain.access import Role
    from deployops.errors import ConfigError

    name = os.environ.get("DEPLOYOPS_USER") or getpass.getuser()
    text = os.environ.get("DEPLOYOPS_ROLE", "deployer")
    try:
        role = Role.parse(text)
    except ValueError as exc:
        raise ConfigError(
            str(exc), path="DEPLOYOPS_ROLE", hint="set viewer, deployer or admin"
        ) from None
    return Caller(name=name, role=role)


def _require(needed: Role, what: str) -> Caller:
    from deployops.errors import ConfigError

    who = caller()
    if not who.role.allows(needed):
        raise ConfigError(
            f"{what} needs the {needed.value} role; {who.name} is {who.role.value}",
            path="DEPLOYOPS_ROLE",
            hint=f"ask someone with the {needed.value} role to run it",
        )
    return who


# ---------------------------------------------------------------------- building
def settings_of(app: App) -> ChecklistSettings:
    from deployops.errors import ConfigError

    cfg = app.project.checklist
    if cfg is None or not cfg.enabled:
        raise ConfigError(
            f"{app.project.path.name} has no checklist",
            path="checklist",
            hint=f"add a checklist: section to {app.project.path} "
            "(docs/runbooks/checklist.md shows one)",
        )
    return cfg


def build_gate(app: App, environment: str, items: Sequence[ResolvedItem]) -> ChecklistGate:
    """The gate with its GitHub and git readers (the token resolved only when used)."""
    from deployops.engine.checklist import ChecklistGate

    project = app.project

    def fetch_pull(gh: Mapping[str, Any]) -> tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]:
        import httpx

        from deployops.config.appconfig import paths_for
        from deployops.config.appconfig.loader import default_secret_store
        from deployops.config.notifications import SECRET_PREFIX, secret_name
        from deployops.drivers.github import GithubPullReviews
        from deployops.secret import Secret

        ref = str(gh.get("token") or "")
        token: Secret | None = None
        if ref.startswith(SECRET_PREFIX):
            token = default_secret_store(paths_for(project), environment).get(secret_name(ref))
        elif ref:
            token = Secret(ref)
        with httpx.Client(trust_env=False, follow_redirects=False) as http:
            client = GithubPullReviews(api_url=str(gh["api_url"]), token=token, http=http)
            return client.fetch(str(gh["repo"]), int(gh["pull"]))

    def read_commit(ref: str) -> tuple[str, str]:
        from deployops.drivers.git import commit_author_and_message

        return commit_author_and_message(project.root, ref)

    return ChecklistGate(
        items=items, root=project.root, fetch_pull=fetch_pull, read_commit=read_commit
    )


# ---------------------------------------------------------------------- the pre gate
@dataclass
class PreGateRun:
    """What :func:`before_deploy` decided, for :func:`after_deploy` to keep with the
    deployment."""

    environment: str
    service: str
    version: str
    outcome: GateOutcome
    started: Any  # datetime
    gate: ChecklistGate
    entries: Sequence[Any]  # the release's sign-offs (ChecklistEntry)
    overrides: Mapping[str, tuple[str, str]]


def before_deploy(
    app: App,
    *,
    environment: str,
    service: str,
    version: str,
    overrides: Sequence[str],
    reason: str | None,
) -> PreGateRun | None:
    """CHK-1: judge the pre-deploy gate; refuse the deploy (exit 2) naming every failing item
    and its evidence, unless an admin overrides those items with a reason (audited). Then send
    the deployment notice through the notification routes. ``None`` when the project has no
    checklist."""
    from deployops.clock import SystemClock
    from deployops.domain.checklist import Stage
    from deployops.domain.version import Version
    from deployops.errors import ConfigError, ConfigIssue, GateFailedError
    from deployops.store import EventRecord

    cfg = app.project.checklist
    if cfg is None or not cfg.enabled:
        if overrides:
            raise ConfigError(
                "--override-gate given, but the project has no checklist", path="--override-gate"
            )
        return None
    try:
        Version.parse(version)
    except ValueError as exc:
        raise ConfigError(
            str(exc), path="--version", hint="pass a semantic version such as 1.4.0"
        ) from None
    clock = SystemClock()
    items = cfg.items(Stage.PRE)
    names = {i.name for i in items}
    for name in overrides:
        if name not in names:
            raise ConfigError(
                f"unknown pre-deploy item {name!r}; the items are {', '.join(sorted(names))}",
                path="--override-gate",
            )
    admin = None
    if overrides:
        if not reason or not reason.strip():
            raise ConfigError(
                "--override-gate needs --reason TEXT (it is kept in the audit log)",
                path="--reason",
            )
        admin = _require(_role("admin"), "overriding a checklist item")
    gate = build_gate(app, environment, items)
    entries = app.store.checklist_entries(
        environment=environment, service=service, version=version, unlinked=True, stage="pre"
    )
    over = {n: (admin.name if admin else "", reason or "") for n in overrides}
    outcome = gate.pre_gate(entries, overrides=over)
    blocking = gate.blocking(outcome)
    now = clock.now()
    if blocking:
        app.store.add_event(
            EventRecord(
                ts=now,
                kind="deploy.refused",
                level="warning",
                environment=environment,
                service=service,
                message=f"refused deploy of {service} {version}: pre-deploy checklist items "
                f"failing: {', '.join(s.name for s in blocking)}",
                data={"version": version, "gate": outcome.to_json()},
            )
        )
        raise GateFailedError(
            [
                ConfigIssue(
                    path=f"checklist.pre.{s.name}",
                    message=f"{s.status.value}: {s.summary}",
                )
                for s in blocking
            ],
            hint=_refusal_hint(blocking, environment, version),
            outcome=outcome.to_json(),
        )
    return PreGateRun(environment, service, version, outcome, now, gate, entries, over)


def announce(app: App, run: PreGateRun) -> None:
    """The deploy goes ahead: audit the overrides, send the deployment notice (its delivery
    time ticks the item) and keep every pre-deploy item's state for the deployment."""
    from deployops.clock import SystemClock
    from deployops.domain.checklist import ItemStatus
    from deployops.errors import ConfigIssue, GateFailedError
    from deployops.store import AuditRecord, ChecklistEntry

    environment, service, version = run.environment, run.service, run.version
    gate, entries, over, outcome = run.gate, run.entries, run.overrides, run.outcome
    items = gate.items
    now = SystemClock().now()
    for s in outcome.items:
        if s.status is ItemStatus.OVERRIDDEN:
            app.store.audit(
                AuditRecord(
                    ts=now,
                    actor=s.by,
                    action="checklist.override",
                    target=f"{environment}/{service} {version}",
                    detail={"item": s.name, "reason": s.note, "summary": s.summary},
                )
            )
    notice = send_notice(app, environment=environment, service=service, version=version)
    notice_items = [i for i in items if i.check.value == "notice"]
    if notice_items:
        outcome = gate.pre_gate(entries, overrides=over, notice=_notice_verdict(notice))
        failed = [s for s in outcome.failing if s.name in {i.name for i in notice_items}]
        if failed:
            raise GateFailedError(
                [ConfigIssue(path=f"checklist.pre.{s.name}", message=s.summary) for s in failed],
                hint="route deployment notices to a Slack channel "
                "(notifications.routes.deployment) and check it is reachable, or set "
                "checklist.pre.deployment-notice.on_failure: warn",
                outcome=outcome.to_json(),
            )
    for s in outcome.items:
        if s.status in (ItemStatus.SIGNED,) and s.by:
            continue  # already stored as its sign-off
        app.store.add_checklist_entry(
            ChecklistEntry(
                ts=now,
                environment=environment,
                service=service,
                version=version,
                stage="pre",
                item=s.name,
                status=s.status.value,
                actor=s.by,
                note=s.note,
                summary=s.summary,
                source=s.source,
                evidence=dict(s.evidence),
            )
        )
    run.outcome = outcome


def _role(name: str) -> Role:
    from deployops.domain.access import Role

    return Role(name)


def _refusal_hint(blocking: Sequence[Any], environment: str, version: str) -> str:
    manual = [s.name for s in blocking if s.kind.value == "manual"]
    parts = []
    if manual:
        parts.append(
            f"sign off with `deployops checklist sign {manual[0]} --by NAME -e {environment} "
            f"--version {version}`"
        )
    if len(manual) < len(blocking):
        parts.append("fix the reports named above and run the deploy again")
    parts.append(
        f"`deployops checklist show -e {environment} --version {version}` shows every item; "
        "an admin may pass --override-gate ITEM --reason TEXT"
    )
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class NoticeResult:
    sent: bool
    channel: str
    slack_channel: str
    ts: str
    error: str
    routed: bool


def send_notice(app: App, *, environment: str, service: str, version: str) -> NoticeResult:
    """The deployment notice (CHK-1 #deployments), sent through the notification routes at
    once (not in the background) so its delivery time ticks the item."""
    from deployops.clock import SystemClock
    from deployops.config.notifications import SlackChannel

    project = app.project
    if not project.notifications:
        return NoticeResult(False, "", "", "", "no notifications are configured", False)
    from deployops.config.appconfig import paths_for
    from deployops.config.appconfig.loader import default_secret_store
    from deployops.notify.router import Notice, build_router, store_recorder

    clock = SystemClock()
    settings = project.notification_settings()
    secrets = default_secret_store(paths_for(project), environment)
    live = app.store.list_deployments(environment=environment, service=service, limit=1)
    previous = live[0].version if live and live[0].status == "succeeded" else "-"
    router = build_router(
        settings,
        resolve=secrets.get,
        clock=clock,
        record=store_recorder(app.store, clock),
        strict=False,
    )
    with router:
        notice = Notice(
            severity="info",
            kind="deployment.started",
            title=f"Deploying {service} {version} to {environment}",
            text=f"{service}: {previous} -> {version} in {environment}; the pre-deploy "
            "checklist passed",
            dedup_key=f"deployment.started:{environment}:{service}:{version}:{clock.now():%s}",
            fields={"environment": environment, "service": service, "version": version},
            environment=environment,
            service=service,
        )
        deliveries = router.notify(notice)
    slack = [d for d in deliveries if isinstance(settings.channels.get(d.channel), SlackChannel)]
    if not slack:
        return NoticeResult(
            False,
            "",
            "",
            "",
            "no Slack channel is routed deployment notices",
            bool(deliveries),
        )
    ok = next((d for d in slack if d.status == "sent"), None)
    ch = settings.channels[(ok or slack[0]).channel]
    assert isinstance(ch, SlackChannel)
    if ok is None:
        return NoticeResult(False, slack[0].channel, ch.channel, "", slack[0].error, True)
    return NoticeResult(True, ok.channel, ch.channel, ok.ts.isoformat(), "", True)


def _notice_verdict(result: NoticeResult) -> ItemVerdict:
    from deployops.domain.checklist import ItemVerdict

    evidence = {
        "channel": result.channel,
        "slack_channel": result.slack_channel,
        "sent_at": result.ts,
        "error": result.error,
    }
    if result.sent:
        return ItemVerdict(
            "deployment-notice",
            True,
            f"sent to {result.slack_channel} at {result.ts}",
            evidence,
            result.channel,
        )
    return ItemVerdict(
        "deployment-notice",
        False,
        f"not sent: {result.error}",
        evidence,
        result.channel,
    )


def after_deploy(app: App, run: PreGateRun) -> str | None:
    """Keep the release's checklist with the deployment that shipped it."""
    rows = app.store.list_deployments(environment=run.environment, service=run.service, limit=5)
    for rec in rows:
        if rec.version == run.version and rec.created_at >= run.started and rec.kind == "deploy":
            app.store.link_checklist(
                environment=run.environment,
                service=run.service,
                version=run.version,
                deployment_id=rec.id,
            )
            _during_summary(app, rec)
            return rec.id
    return None


def _during_summary(app: App, rec: Any) -> None:
    """CHK-2 once the deploy ended: the four milestones from its steps, and the limits that
    were never judged (too little traffic) said as such."""
    from deployops.clock import SystemClock
    from deployops.domain.checklist import Check, Stage
    from deployops.engine.checklist import deployment_entry, milestone_entries

    cfg = app.project.checklist
    if cfg is None:
        return
    now = SystemClock().now()
    items = cfg.items(Stage.DURING)
    for e in milestone_entries(rec, app.store.steps_for(rec.id), items, now):
        app.store.add_checklist_entry(e)
    judged = {e.item for e in app.store.checklist_entries(deployment_id=rec.id, stage="during")}
    for it in items:
        if it.check is Check.METRIC and it.name not in judged:
            app.store.add_checklist_entry(
                deployment_entry(
                    rec,
                    stage="during",
                    item=it.name,
                    status="pending",
                    summary="not judged: too little data while the new version was watched",
                    now=now,
                )
            )


# ---------------------------------------------------------------------- commands
@group.command(
    "show",
    help=(
        "Show every checklist item and its state.\n\n"
        "With a deployment id: what was judged and signed for that deployment. With "
        "--version: the pre-deploy gate of that release now (the reports are read again) and "
        "the sign-offs waiting for its deploy.\n\n"
        "Examples:\n\n"
        "  deployops checklist show -e staging --version 1.4.0\n\n"
        "  deployops checklist show dep-20261129-174501-7f3a -o json"
    ),
)
def show(
    ctx: typer.Context,
    deployment_id: Annotated[
        str | None, typer.Argument(help="A deployment id (or a unique prefix).")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="The release about to be deployed.")
    ] = None,
    service: Annotated[str | None, typer.Option("--service", help="Service name.")] = None,
) -> None:
    from deployops.domain.checklist import Stage
    from deployops.engine.checklist import stage_state
    from deployops.errors import ConfigError

    app = get_app(ctx)
    cfg = settings_of(app)
    all_items = [i for st in Stage for i in cfg.items(st)]
    if deployment_id:
        rec = app.store.require_deployment(deployment_id)
        env, svc, ver = rec.environment, rec.service, rec.version
        entries = app.store.checklist_entries(deployment_id=rec.id)
        gates = [stage_state(all_items, entries, st) for st in Stage]
        dep: str | None = rec.id
    else:
        if not version:
            raise ConfigError(
                "which release? pass a deployment id, or --version for the next deploy",
                path="--version",
                hint="`deployops deployments list` shows deployment ids",
            )
        env = app.environment_name()
        svc = app.service_name(service)
        ver = version
        entries = app.store.checklist_entries(
            environment=env, service=svc, version=ver, unlinked=True
        )
        gate = build_gate(app, env, cfg.items(Stage.PRE))
        pre = gate.pre_gate([e for e in entries if e.stage == "pre"])
        gates = [pre] + [stage_state(all_items, entries, st) for st in (Stage.DURING, Stage.POST)]
        dep = None
    _render(app, dep, env, svc, ver, gates)


def _render(
    app: App,
    deployment_id: str | None,
    env: str,
    svc: str,
    version: str,
    gates: Sequence[GateOutcome],
) -> None:
    if app.json:
        app.emit(
            {
                "deployment": deployment_id,
                "environment": env,
                "service": svc,
                "version": version,
                "gates": [g.to_json() for g in gates],
            }
        )
        return
    c = app.console
    head = deployment_id or f"next deploy of {svc} {version} to {env}"
    c.print(f"[bold]checklist[/bold] {head}")
    colour = {
        "passed": "green",
        "signed": "green",
        "failed": "red",
        "pending": "yellow",
        "warned": "yellow",
        "overridden": "magenta",
        "not_required": "dim",
    }
    for g in gates:
        state = "open" if g.passed else f"shut ({len(g.failing)} failing or pending)"
        c.print(f"\n[bold]{g.stage.value}[/bold]: {state}")
        for s in g.items:
            col = colour.get(s.status.value, "white")
            who = f" by {s.by}" if s.by else ""
            note = f" ({s.note})" if s.note else ""
            c.print(
                f"  [{col}]{s.status.value:12}[/{col}] {s.name:28} {s.summary}{who}{note}",
                soft_wrap=True,
            )


@group.command(
    "sign",
    help=(
        "Sign off a manual checklist item.\n\n"
        "Pre-deploy items are signed for a release (--version) before its deploy; "
        "post-deploy items for the deployment (its id, default: the newest of the service). "
        "Each sign-off is stored with the deployment and audited.\n\n"
        "Examples:\n\n"
        "  deployops checklist sign on-call --by alice -e production --version 1.4.0\n\n"
        "  deployops checklist sign user-feedback --by bob --deployment dep-20261129-174501-7f3a "
        "--note 'no complaints in #support'"
    ),
)
def sign(
    ctx: typer.Context,
    item: Annotated[str, typer.Argument(help="The item's name (see `checklist show`).")],
    by: Annotated[str, typer.Option("--by", help="Who signs it off.")],
    note: Annotated[str, typer.Option("--note", help="What was checked, where.")] = "",
    version: Annotated[
        str | None, typer.Option("--version", help="The release (pre-deploy items).")
    ] = None,
    deployment_id: Annotated[
        str | None, typer.Option("--deployment", help="The deployment (post-deploy items).")
    ] = None,
    service: Annotated[str | None, typer.Option("--service", help="Service name.")] = None,
) -> None:
    from deployops.clock import SystemClock
    from deployops.domain.checklist import ItemKind, Stage
    from deployops.domain.version import Version
    from deployops.errors import ConfigError
    from deployops.store import AuditRecord, ChecklistEntry

    app = get_app(ctx)
    cfg = settings_of(app)
    who = _require(_role("deployer"), "signing off a checklist item")
    it = cfg.item(item)
    if it is None:
        import difflib

        names = cfg.all_names()
        close = difflib.get_close_matches(item, names, n=1)
        raise ConfigError(
            f"unknown checklist item {item!r}"
            + (f" (did you mean {close[0]!r}?)" if close else ""),
            path="ITEM",
            hint="`deployops checklist show --version X.Y.Z` lists the items",
        )
    if it.kind is not ItemKind.MANUAL:
        raise ConfigError(
            f"{item} is automated: deployops judges it ({it.title}); nobody signs it off",
            path="ITEM",
            hint="fix what it reads, or an admin may pass --override-gate to deploy",
        )
    if not by.strip():
        raise ConfigError("--by names the person signing off", path="--by")
    clock = SystemClock()
    dep: str | None = None
    if it.stage is Stage.PRE:
        if deployment_id:
            rec = app.store.require_deployment(deployment_id)
            raise ConfigError(
                f"{rec.id} has already started ({rec.status}): pre-deploy items are signed "
                "before the deploy",
                path="--deployment",
                hint=f"sign for the next release with --version (e.g. --version {rec.version})",
            )
        if not version:
            raise ConfigError(
                f"{item} is a pre-deploy item: pass --version of the release it is for",
                path="--version",
            )
        try:
            Version.parse(version)
        except ValueError as exc:
            raise ConfigError(str(exc), path="--version") from None
        env = app.environment_name()
        svc = app.service_name(service)
        ver = version
    else:
        if deployment_id:
            rec = app.store.require_deployment(deployment_id)
        else:
            env = app.environment_name()
            svc = app.service_name(service)
            found = app.store.list_deployments(environment=env, service=svc, limit=1)
            if not found:
                raise ConfigError(
                    f"no deployment of {svc} in {env} to sign {item} for",
                    path="--deployment",
                    hint="`deployops deployments list` shows the deployments",
                )
            rec = found[0]
        if rec.kind != "deploy":
            raise ConfigError(f"{rec.id} is a {rec.kind}, not a deploy", path="--deployment")
        closed = [
            e
            for e in app.store.checklist_entries(deployment_id=rec.id)
            if e.item == "completion-report" and e.status == "passed"
        ]
        if rec.status not in ("running", "succeeded") or closed:
            why = "its completion report is written" if closed else f"it {rec.status}"
            raise ConfigError(
                f"{rec.id} has ended ({why}): its checklist is closed",
                path="--deployment",
                hint=f"`deployops checklist show {rec.id}` shows what was signed",
            )
        env, svc, ver, dep = rec.environment, rec.service, rec.version, rec.id
    now = clock.now()
    app.store.add_checklist_entry(
        ChecklistEntry(
            ts=now,
            environment=env,
            service=svc,
            version=ver,
            deployment_id=dep,
            stage=it.stage.value,
            item=it.name,
            status="signed",
            actor=by,
            note=note,
            summary=f"signed off by {by}",
            evidence={"signed_by": by, "recorded_by": who.name, "at": now.isoformat()},
        )
    )
    app.store.audit(
        AuditRecord(
            ts=now,
            actor=who.name,
            action="checklist.sign",
            target=dep or f"{env}/{svc} {ver}",
            detail={"item": it.name, "by": by, "note": note, "stage": it.stage.value},
        )
    )
    if app.json:
        app.emit(
            {
                "item": it.name,
                "stage": it.stage.value,
                "status": "signed",
                "by": by,
                "note": note,
                "deployment": dep,
                "environment": env,
                "service": svc,
                "version": ver,
                "at": now.isoformat(),
            }
        )
        return
    target = dep or f"the next deploy of {svc} {ver} to {env}"
    app.console.print(f"signed [bold]{it.name}[/bold] by {by} for {target} at {fmt_time(now)}")


# ---------------------------------------------------------------------- after the deploy (CHK-3)
def _database_check(dsn: str) -> tuple[bool, str]:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            row = conn.execute("SELECT current_database(), version()").fetchone()
    except psycopg.Error as exc:
        # The message of psycopg never holds the password; the DSN is not repeated.
        return False, "cannot connect: " + " ".join(str(exc).split())[:200]
    name = row[0] if row else "?"
    return True, f"connected to database {name!r}"


def _log_reader(app: App, environment: str, target_group: str) -> Any:
    """Lines the new version's replicas write from now on (local platform)."""
    from deployops.drivers.local.paths import LocalPaths

    folder = LocalPaths.of(app.project, environment).logs / target_group
    start = {p: p.stat().st_size for p in folder.glob("*.log")} if folder.is_dir() else {}

    def read() -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if not folder.is_dir():
            return out
        for path in sorted(folder.glob("*.log")):
            with path.open("rb") as f:
                f.seek(start.get(path, 0))
                text = f.read(2_000_000).decode("utf-8", "replace")
            out += [(path.name, line) for line in text.splitlines() if line.strip()]
        return out

    return read


def after_success(app: App, deployment_id: str) -> None:
    """CHK-3: run the post-deploy checks of a deployment that succeeded, keep their verdicts
    with it and write its completion report."""
    from deployops.clock import SystemClock
    from deployops.domain.checklist import ItemStatus, Stage
    from deployops.drivers import build_platform
    from deployops.engine.checklist_post import PostChecks
    from deployops.store import ChecklistEntry

    cfg = app.project.checklist
    if cfg is None or not cfg.enabled:
        return
    rec = app.store.require_deployment(deployment_id)
    items = cfg.items(Stage.POST)
    clock = SystemClock()
    platform = build_platform(app.project, rec.environment, clock=clock, store=app.store)
    listener = platform.traffic.describe_listener(prod_listener(rec.service))
    svc = app.project.service(rec.service)
    db_item = cfg.item("database")
    dsn = (db_item.options.get("dsn") if db_item else None) or (
        app.project.environment(rec.environment).local.database_dsn
    )
    during = {i.name: i for i in cfg.items(Stage.DURING)}
    checks = PostChecks(
        items=items,
        prober=platform.prober,
        metrics=platform.metrics,
        clock=clock,
        prod_url=f"http://{listener.host}:{listener.port}",
        scope=rec.target_group,
        smoke_default=[(c.path, c.status) for c in svc.blue_green.smoke_checks],
        database=(lambda: _database_check(str(dsn))) if dsn else None,
        read_logs=_log_reader(app, rec.environment, rec.target_group)
        if app.project.environment(rec.environment).platform == "local"
        else None,
        max_error_rate=float(during["error-rate"].options["threshold"])
        if "error-rate" in during
        else 1.0,
        max_p99_ms=float(during["p99-latency"].options["threshold"])
        if "p99-latency" in during
        else 500.0,
        period_s=max(1, round((app.project.rollback or _rb()).period)),
    )
    shown = [0.0]

    def progress(message: str, left: float) -> None:
        mono = clock.monotonic()
        if mono - shown[0] >= 5.0:
            shown[0] = mono
            app.info(f"  {message}: {left:.0f}s left")

    app.info(f"post-deploy checks of {rec.id}")
    verdicts = checks.run(progress=progress)
    now = clock.now()
    for v in verdicts:
        item = next(i for i in items if i.name == v.item)
        status = ItemStatus.PASSED if v.passed else ItemStatus.WARNED
        app.store.add_checklist_entry(
            ChecklistEntry(
                ts=now,
                environment=rec.environment,
                service=rec.service,
                version=rec.version,
                deployment_id=rec.id,
                stage="post",
                item=v.item,
                status=status.value,
                summary=v.summary,
                source=v.source,
                evidence=dict(v.evidence),
            )
        )
        app.info(f"  {status.value:8} {v.item}: {v.summary}")
        if not v.passed:
            _notify_post_failure(app, rec, item.title, v.summary)
    path = write_report(app, rec.id)
    app.info(f"completion report: {path}")


def _rb() -> Any:
    from deployops.config.rollback import RollbackSettings

    return RollbackSettings()


def _notify_post_failure(app: App, rec: Any, title: str, summary: str) -> None:
    from deployops.clock import SystemClock
    from deployops.engine.events import Notice
    from deployops.wiring import build_notify

    notify = build_notify(app.project, rec.environment, app.store, SystemClock())
    notify(
        Notice(
            severity="warning",
            kind="deployment.checklist",
            title=f"{rec.service} {rec.version}: post-deploy check failed: {title}",
            text=summary,
            dedup_key=f"{rec.id}:post:{title}",
            fields={"deployment": rec.id, "environment": rec.environment},
        )
    )


def write_report(app: App, deployment_id: str) -> Any:
    """(Re)write the completion report of a deployment; final once every post-deploy manual
    item is signed off (or optional / warn-only), which closes its checklist."""
    from deployops.clock import SystemClock
    from deployops.domain.checklist import ItemKind, ItemStatus, Stage
    from deployops.engine.checklist import stage_state
    from deployops.engine.checklist_post import render_completion_report, report_paths
    from deployops.store import ChecklistEntry, EventRecord

    cfg = settings_of(app)
    rec = app.store.require_deployment(deployment_id)
    entries = app.store.checklist_entries(deployment_id=rec.id)
    items = [i for st in Stage for i in cfg.items(st)]
    gates = [stage_state(items, entries, st) for st in Stage]
    post = gates[2]
    open_items = [
        s
        for s in post.items
        if s.kind is ItemKind.MANUAL
        and s.status is ItemStatus.PENDING
        and s.name != "completion-report"
    ]
    manual_required = {
        i.name for i in items if i.stage is Stage.POST and i.kind is ItemKind.MANUAL and i.required
    }
    final = not [s for s in open_items if s.name in manual_required]
    incidents = [
        e
        for e in app.store.events(deployment_id=rec.id)
        if e.level in ("warning", "error", "critical") and not e.kind.startswith("progress")
    ]
    notes = [e for e in entries if e.item in ("lessons", "handover")]
    now = SystemClock().now()
    md, html = render_completion_report(
        rec,
        steps=app.store.steps_for(rec.id),
        gates=gates,
        incidents=incidents,
        notes=notes,
        final=final,
        generated_at=now,
    )
    md_path, html_path = report_paths(app.project.root / cfg.report_dir, rec.id)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(md, encoding="utf-8")
    html_path.write_text(html, encoding="utf-8")
    status = ItemStatus.PASSED if final else ItemStatus.PENDING
    summary = (
        "final" if final else "open until " + ", ".join(s.name for s in open_items) + " signed off"
    )
    if any(i.name == "completion-report" for i in items):
        app.store.add_checklist_entry(
            ChecklistEntry(
                ts=now,
                environment=rec.environment,
                service=rec.service,
                version=rec.version,
                deployment_id=rec.id,
                stage="post",
                item="completion-report",
                status=status.value,
                summary=f"{md_path.name} and {html_path.name}: {summary}",
                source=str(md_path),
                evidence={"markdown": str(md_path), "html": str(html_path), "final": final},
            )
        )
    app.store.add_event(
        EventRecord(
            ts=now,
            kind="checklist.report",
            message=f"completion report {'written' if final else 'updated'}: {md_path}",
            deployment_id=rec.id,
            environment=rec.environment,
            service=rec.service,
            data={"markdown": str(md_path), "html": str(html_path), "final": final},
        )
    )
    return md_path


@group.command(
    "report",
    help=(
        "Write a deployment's completion report again (Markdown and HTML).\n\n"
        "It lists what ran, every checklist item with its evidence and who signed it, "
        "incidents, lessons and hand-over notes. Once every post-deploy manual item is signed "
        "off the report is final and the deployment's checklist is closed.\n\n"
        "Examples:\n\n"
        "  deployops checklist report dep-20261129-174501-7f3a"
    ),
)
def report(
    ctx: typer.Context,
    deployment_id: Annotated[str, typer.Argument(help="A deployment id (or a unique prefix).")],
) -> None:
    app = get_app(ctx)
    _require(_role("deployer"), "writing a completion report")
    rec = app.store.require_deployment(deployment_id)
    path = write_report(app, rec.id)
    final = app.store.checklist_entries(deployment_id=rec.id)[-1].evidence.get("final")
    if app.json:
        app.emit(
            {
                "deployment": rec.id,
                "markdown": str(path),
                "html": str(path.with_suffix(".html")),
                "final": bool(final),
            }
        )
        return
    app.console.print(f"completion report of {rec.id}: {path} ({'final' if final else 'open'})")


@group.command(
    "note",
    help=(
        "Add a lesson learned or a hand-over note to a deployment's completion report.\n\n"
        "Examples:\n\n"
        "  deployops checklist note dep-20261129-174501-7f3a --lesson 'warm the cache first'\n\n"
        "  deployops checklist note dep-20261129-174501-7f3a --handover 'watch the queue depth'"
    ),
)
def note(
    ctx: typer.Context,
    deployment_id: Annotated[str, typer.Argument(help="A deployment id (or a unique prefix).")],
    lesson: Annotated[str | None, typer.Option("--lesson", help="What to do better.")] = None,
    handover: Annotated[
        str | None, typer.Option("--handover", help="What the next deploy must know.")
    ] = None,
) -> None:
    from deployops.clock import SystemClock
    from deployops.errors import ConfigError
    from deployops.store import ChecklistEntry

    app = get_app(ctx)
    settings_of(app)
    who = _require(_role("deployer"), "adding a note")
    if not (lesson or handover):
        raise ConfigError("pass --lesson TEXT or --handover TEXT", path="note")
    rec = app.store.require_deployment(deployment_id)
    now = SystemClock().now()
    for item, text in (("lessons", lesson), ("handover", handover)):
        if text:
            app.store.add_checklist_entry(
                ChecklistEntry(
                    ts=now,
                    environment=rec.environment,
                    service=rec.service,
                    version=rec.version,
                    deployment_id=rec.id,
                    stage="post",
                    item=item,
                    status="note",
                    actor=who.name,
                    note=text,
                )
            )
    path = write_report(app, rec.id)
    if app.json:
        app.emit({"deployment": rec.id, "report": str(path)})
        return
    app.console.print(f"noted for {rec.id}; report: {path}")


@group.command(
    "decide",
    help=(
        "Decide on a deployment held by a during-deploy checklist item.\n\n"
        "An item with on_failure: hold pauses the deployment when its limit is broken; "
        "--continue lets it go on, --rollback reverts it at once. Without a decision within "
        "the item's hold_timeout the deployment is rolled back.\n\n"
        "Examples:\n\n"
        "  deployops checklist decide dep-20261129-174501-7f3a --continue --reason 'known spike'"
        "\n\n"
        "  deployops checklist decide dep-20261129-174501-7f3a --rollback"
    ),
)
def decide(
    ctx: typer.Context,
    deployment_id: Annotated[str, typer.Argument(help="The held deployment's id (or prefix).")],
    go_on: Annotated[bool, typer.Option("--continue", help="Let the deployment go on.")] = False,
    rollback: Annotated[bool, typer.Option("--rollback", help="Roll it back now.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
) -> None:
    from deployops.clock import SystemClock
    from deployops.errors import ConfigError
    from deployops.store import AuditRecord, ChecklistEntry

    app = get_app(ctx)
    settings_of(app)
    who = _require(_role("deployer"), "deciding on a held deployment")
    if go_on == rollback:
        raise ConfigError("pass exactly one of --continue and --rollback", path="decide")
    rec = app.store.require_deployment(deployment_id)
    if rec.status != "running":
        raise ConfigError(
            f"{rec.id} is {rec.status}: there is nothing to decide",
            path="DEPLOYMENT_ID",
            hint=f"`deployops checklist show {rec.id}` shows how it ended",
        )
    during = app.store.checklist_entries(deployment_id=rec.id, stage="during")
    held = [e for e in during if e.status == "held"]
    if not held or any(e.status == "decided" and e.ts >= held[-1].ts for e in during):
        raise ConfigError(
            f"{rec.id} is not held: no during-deploy item is waiting for a decision",
            path="DEPLOYMENT_ID",
            hint=f"`deployops checklist show {rec.id}` shows its items",
        )
    choice = "continue" if go_on else "rollback"
    now = SystemClock().now()
    app.store.add_checklist_entry(
        ChecklistEntry(
            ts=now,
            environment=rec.environment,
            service=rec.service,
            version=rec.version,
            deployment_id=rec.id,
            stage="during",
            item=held[-1].item,
            status="decided",
            actor=who.name,
            note=reason,
            summary=f"{choice} decided by {who.name}",
            evidence={"decision": choice, "held_at": held[-1].ts.isoformat()},
        )
    )
    app.store.audit(
        AuditRecord(
            ts=now,
            actor=who.name,
            action="checklist.decide",
            target=rec.id,
            detail={"item": held[-1].item, "decision": choice, "reason": reason},
        )
    )
    if app.json:
        app.emit({"deployment": rec.id, "item": held[-1].item, "decision": choice})
        return
    app.console.print(f"{rec.id}: {choice} ({held[-1].item}), decided by {who.name}")
