"""``deployops rules backtest``: what a changed rollback policy would have done with past
deployments, from their kept measurements."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deployops.cli._common import fmt_time, get_app

group = typer.Typer(
    help=(
        "The rollback rules and the comparison of the new version with the old.\n\n"
        "Examples:\n\n"
        "  deployops rules backtest --policy stricter.yaml --since 30d\n\n"
        "  deployops -o json rules backtest -e production"
    ),
    no_args_is_help=True,
)

_CHANGE_WORDS = {
    "same": "same",
    "earlier": "earlier rollback",
    "later": "later rollback",
    "false_rollback": "would roll back a release that was fine",
    "miss": "miss: would not have rolled back",
}


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="rules")


@group.command("backtest")
def backtest(
    ctx: typer.Context,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="A YAML file with a rollback: section (as in deployops.yaml) to replay; "
            "default: deployops.yaml's own.",
        ),
    ] = None,
    since: Annotated[
        str, typer.Option("--since", help="Deployments observed within this long (e.g. 7d).")
    ] = "30d",
) -> None:
    """Replay the kept measurements of past deployments against a rollback policy.

    For each deployment observed since then: what happened, what the policy would have
    decided and when (seconds after its observation began), and the difference: same,
    earlier rollback, later rollback, a rollback of a release that was fine, or a miss.
    Measurements are kept for rollback.measurements_retention (90d by default). With -e
    only that environment's deployments are replayed.

    Examples:

      deployops rules backtest --policy stricter.yaml

      deployops rules backtest --since 7d -e production

      deployops -o json rules backtest --policy stricter.yaml
    """
    from datetime import timedelta

    from deployops.clock import SystemClock
    from deployops.config.durations import parse_duration
    from deployops.config.rollback import (
        PolicyFile,
        RollbackSettings,
        effective_rollback,
        load_policy_file,
    )
    from deployops.engine.backtest import run_backtest
    from deployops.errors import ConfigError

    app = get_app(ctx)
    try:
        cutoff = SystemClock().now() - timedelta(seconds=parse_duration(since))
    except ValueError as exc:
        raise ConfigError(str(exc), path="--since", hint="e.g. --since 30d") from None
    environment = app.environment_name() if app.env else None
    if policy is not None:
        changed: PolicyFile = load_policy_file(policy)

        def settings_for(service: str) -> RollbackSettings:
            own = app.project.services.get(service)
            base = changed.settings_for(service)
            if service not in changed.services and own is not None and own.rollback is not None:
                base = base.merged(own.rollback)  # the service's own changes still apply
            return base

    else:

        def settings_for(service: str) -> RollbackSettings:
            if service in app.project.services:
                return effective_rollback(app.project, service)
            return app.project.rollback or RollbackSettings()

    results = run_backtest(
        app.store,
        settings_for=settings_for,
        since=cutoff,
        environment=environment,
    )
    if app.json:
        app.emit(
            {
                "policy": str(policy) if policy else "deployops.yaml",
                "since": cutoff.isoformat(),
                "deployments": [r.to_dict() for r in results],
                "changed": [r.deployment.id for r in results if r.change.value != "same"],
            }
        )
        return
    c = app.console
    if not results:
        c.print(
            f"no deployment with kept measurements since {fmt_time(cutoff)} "
            "(observed deployments keep them for rollback.measurements_retention)"
        )
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("DEPLOYMENT", "SERVICE", "VERSION", "HAPPENED", "WOULD", "CHANGE"):
        table.add_column(col)
    for r in results:
        d = r.to_dict()
        happened = d["happened"]
        would = d["would"]
        was = r.happened
        if happened["t_plus_s"] is not None:
            was += f" at T+{happened['t_plus_s']:g}s ({happened['by']})"
        then = would["outcome"]
        if would["t_plus_s"] is not None:
            then = f"{then} at T+{would['t_plus_s']:g}s ({would['rule']})"
        table.add_row(
            r.deployment.id,
            r.deployment.service,
            r.deployment.version,
            was,
            then,
            _CHANGE_WORDS[r.change.value],
        )
    c.print(table)
    changed_n = sum(1 for r in results if r.change.value != "same")
    c.print(
        f"{len(results)} deployments replayed, {changed_n} decided differently "
        f"(policy: {policy or 'deployops.yaml'}; times are seconds after each observation "
        "began, judged at the end of each kept window)",
        highlight=False,
    )
