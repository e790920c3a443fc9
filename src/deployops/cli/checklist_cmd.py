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
            return rec.id
    return None


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
