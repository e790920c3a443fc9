"""``deployops deploy|resume``: run the guide's deployment (DEP-1..DEP-7)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from deployops.cli._common import get_app

if TYPE_CHECKING:
    from deployops.cli.app import App
    from deployops.engine.events import Reporter

DEPLOY_HELP = """Deploy a version of a service (blue-green by default).

Phases (the guide's section 2): prepare (register the task definition, create the green
target group) -> deploy (start green, wait for health, smoke-test it on the test listener)
-> switch (move the production listener, confirm, observe the stability window) -> cleanup
(scale blue to 0, delete its target group 24 h later).

Canary and linear (`--strategy canary|linear`, or `strategy:` in deployops.yaml) shift
production in steps instead of switching at once: each step sends a share of the requests to
the new version (canary: `canary.steps`, e.g. 5, 25, 50, 100 %; linear: every
`linear.step_percent`), bakes it (`canary.bake` / `linear.bake`) and compares it with the
previous version before the next; a failed step puts every request back on the previous
version at once. See docs/runbooks/canary.md.

Exit codes: 0 deployed, 1 failed (traffic left on the old version), 2 bad input (nothing
changed), 3 rolled back, 4 another deploy holds the lock, 5 your role may not deploy (a
deployer is needed).

Examples:

  deployops deploy -e staging --version 1.4.0

  deployops deploy -e production --service web --version 1.4.0 --dry-run

  deployops deploy -e staging --version 1.4.0 --strategy rolling -o json

  deployops deploy -e production --version 1.4.0 --strategy canary
"""


def register(app: typer.Typer) -> None:
    app.command("deploy", help=DEPLOY_HELP)(deploy)
    app.command(
        "resume",
        help=(
            "Continue an interrupted deployment, rollback, restore, drill or secret rotation "
            "from its first unfinished step.\n\n"
            "Without an id, resumes the one operation still marked running in the "
            "environment. Traffic always ends on a healthy target group; a rotation ends "
            "with exactly one current value (finished, or put back). Resuming a rotation "
            "needs the admin role.\n\n"
            "Examples:\n\n"
            "  deployops resume -e staging\n\n"
            "  deployops resume dep-20261129-174501-7f3a\n\n"
            "  deployops resume rst-20261129-180210-9c1e\n\n"
            "  deployops resume rot-20261202-031500-ab12 -e production"
        ),
    )(resume)


def reporter_for(app: App) -> Reporter:
    from deployops.cli.reporting import JsonReporter, TextReporter

    if app.json:
        return JsonReporter()
    return TextReporter(app.err, quiet=app.quiet)


def deploy(
    ctx: typer.Context,
    version: Annotated[
        str, typer.Option("--version", envvar="VERSION", help="Semantic version to deploy.")
    ],
    service: Annotated[
        str | None, typer.Option("--service", envvar="SERVICE", help="Service name.")
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option("--strategy", help="blue-green, rolling, canary or linear (default: config)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = (
        False
    ),
    force: Annotated[bool, typer.Option("--force", help="Deploy even if already live.")] = False,
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", envvar="CLUSTER", help="Must match the environment's cluster."),
    ] = None,
    task_definition: Annotated[
        str | None,
        typer.Option(
            "--task-definition", envvar="TASK_DEFINITION", help="Must match the task family."
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for the outcome (default) or detach.")
    ] = True,
    override_gate: Annotated[
        list[str] | None,
        typer.Option(
            "--override-gate",
            help="Deploy although this pre-deploy checklist item fails (admin; repeatable).",
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why the item is overridden (audited).")
    ] = None,
) -> None:
    from deployops.engine.deploy import DeployRequest
    from deployops.wiring import build_deployer, whoami

    app = get_app(ctx)
    env = app.environment_name()
    svc = app.service_name(service)
    _check_names(app, env, svc, cluster, task_definition)
    version = normal_version(version)
    if not wait and not dry_run:
        _detach(app, env, svc)
        return
    gate = None
    if not dry_run:
        from deployops.cli.checklist_cmd import before_deploy

        gate = before_deploy(  # CHK-1: refused here (exit 2) while a pre-deploy item fails
            app,
            environment=env,
            service=svc,
            version=version,
            overrides=override_gate or [],
            reason=reason,
        )
    deployer = build_deployer(app.project, env, store=app.store, reporter=reporter_for(app))
    request = DeployRequest(
        service=svc, version=version, strategy=strategy, force=force, owner=whoami()
    )
    if dry_run:
        plan, live = deployer.plan(request)
        if app.json:
            app.emit(
                {
                    "dry_run": True,
                    "environment": env,
                    "service": svc,
                    "from": live.version or None,
                    "to": version,
                    "strategy": plan.strategy,
                    "steps": plan.to_json(),
                    "notes": list(plan.notes),
                }
            )
            return
        c = app.console
        c.print(
            f"[bold]plan[/bold] {plan.strategy} of {svc} in {env}: "
            f"{live.version or '(nothing live)'} -> {version}"
        )
        for i, step in enumerate(plan.steps, 1):
            c.print(f"  {i:2}. [dim]{step.phase:8}[/dim] {step.describe()}")
        for note in plan.notes:
            c.print(f"  note: {note}")
        c.print("dry run: nothing was changed")
        return
    if gate is not None:
        from deployops.cli.checklist_cmd import announce
        from deployops.errors import ConfigError

        try:  # bad input is refused before the deployment notice goes out
            plan, live = deployer.plan(request)
        except ConfigError as exc:
            deployer.refuse(request, exc)
            raise
        announce(app, gate)
    try:
        if gate is not None:
            import dataclasses
            import json

            from deployops.engine.steps.checklist import PreDeployGate

            # CHK-1: the gate that passed is the deployment's first stored step
            first = PreDeployGate(outcome=json.dumps(gate.outcome.to_json(), sort_keys=True))
            plan = dataclasses.replace(plan, steps=(first, *plan.steps))
            rec = deployer.start(request, plan, live)
        else:
            rec = deployer.deploy(request)
    finally:
        if gate is not None:
            from deployops.cli.checklist_cmd import after_deploy

            after_deploy(app, gate)
    _summary(app, rec.id)
    if gate is not None:
        from deployops.cli.checklist_cmd import after_success

        after_success(app, rec.id)  # CHK-3: post-deploy checks and the completion report


def _check_names(
    app: App, env: str, svc: str, cluster: str | None, task_definition: str | None
) -> None:
    """DEP-6: CLUSTER and TASK_DEFINITION, when given, must name this environment's."""
    from deployops.errors import ConfigError

    cfg = app.project.service(svc)
    issues = []
    envcfg = app.project.environment(env)
    expected_cluster = envcfg.aws.cluster if envcfg.platform == "aws" else app.project.project
    if cluster and cluster != expected_cluster:
        issues.append(
            f"--cluster {cluster!r} is not {env}'s cluster ({expected_cluster!r}); "
            "unset CLUSTER or pass the right one"
        )
    family = cfg.task_family or svc
    if task_definition and task_definition.split(":")[0] != family:
        issues.append(
            f"--task-definition {task_definition!r} is not the task family of {svc} ({family!r})"
        )
    if issues:
        raise ConfigError("; ".join(issues), path="deploy")


def normal_version(text: str) -> str:
    """``v1.2.0`` -> ``1.2.0``: the one spelling of a version in messages, records, the task
    definition and the version's settings. Text that is no version is left for the deploy's
    own check to report."""
    from deployops.domain.version import Version

    try:
        return str(Version.parse(text))
    except ValueError:
        return text


def _detach(app: App, env: str, svc: str) -> None:
    import subprocess
    import sys

    logs = app.project.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    args = [a for a in sys.argv[1:] if a not in ("--no-wait",)]
    log = logs / f"deploy-{env}-{svc}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deployops", *args, "--wait"],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    if app.json:
        app.emit({"detached": True, "pid": proc.pid, "log": str(log)})
    else:
        app.console.print(
            f"deploying in the background (pid {proc.pid}); log: {log}\n"
            f"follow it with `deployops deployments list -e {env}`"
        )


def _summary(app: App, deployment_id: str) -> None:
    rec = app.store.get_deployment(deployment_id)
    assert rec is not None
    took = (rec.finished_at - rec.created_at).total_seconds() if rec.finished_at else 0.0
    judged = _judged(app, deployment_id)
    if app.json:
        app.emit({"result": rec.to_json(), "seconds": round(took, 2), **judged})
        return
    rules = (
        f"; rules judged: {judged['rules_judged']} of {judged['rules_total']}"
        if "rules_judged" in judged
        else ""
    )
    app.console.print(
        f"[bold green]deployed[/bold green] {rec.service} {rec.version} to {rec.environment} "
        f"in {took:.1f}s ({rec.id}); live on {rec.target_group}{rules}",
        soft_wrap=True,
    )


def _judged(app: App, deployment_id: str) -> dict[str, object]:
    """How much of the rule set the observation judged (RB-1), from its step's result."""
    for step in app.store.steps_for(deployment_id):
        if step.name == "Observe" and "rules_judged" in step.result:
            return {
                "rules_judged": step.result["rules_judged"],
                "rules_total": step.result["rules_total"],
                "judged": step.result.get("judged", {}),
            }
    return {}


def resume(
    ctx: typer.Context,
    deployment_id: Annotated[
        str | None,
        typer.Argument(
            help="Operation id: a deployment, restore, drill or rotation (default: the one "
            "running)."
        ),
    ] = None,
) -> None:
    from deployops.cli._recovery import recovery_kinds, resume_recovery
    from deployops.engine.rotation import ROTATE
    from deployops.errors import ConfigError
    from deployops.store.records import DEPLOYMENT_KINDS
    from deployops.wiring import build_deployer, owner_alive, whoami

    app = get_app(ctx)
    recovery = tuple(recovery_kinds())
    kinds = (*DEPLOYMENT_KINDS, ROTATE.name, *recovery)
    if deployment_id is None:
        env = app.environment_name()
        running = app.store.list_operations(environment=env, kinds=kinds, status=["running"])
        if not running:
            raise ConfigError(
                f"no interrupted operation in {env}",
                path="DEPLOYMENT_ID",
                hint="`deployops deployments list` shows every deployment and its status",
            )
        if len(running) > 1:
            raise ConfigError(
                "several operations are running: " + ", ".join(r.id for r in running),
                path="DEPLOYMENT_ID",
                hint="pass the one to resume",
            )
        deployment_id = running[0].id
    op = app.store.find_operation(deployment_id, kinds=kinds)
    if op is not None and op.kind == ROTATE.name:
        from deployops.cli.secrets_cmd import resume_rotation

        resume_rotation(app, op.id, op.environment)
        return
    if op is not None and op.kind in recovery:
        # a restore or a drill: the same runner, with the recovery steps' ports
        resume_recovery(app, op.id)
        return
    rec = app.store.find_deployment(deployment_id)
    env = rec.environment if rec else app.environment_name()
    deployer = build_deployer(app.project, env, store=app.store, reporter=reporter_for(app))
    done = deployer.resume(deployment_id, owner=whoami(), owner_alive=owner_alive)
    _summary(app, done.id)
