"""``deployops decide ID --continue | --rollback``: the decision a held rollout waits for."""

from __future__ import annotations

from typing import Annotated

import typer

from deployops.cli._common import get_app


def register(app: typer.Typer) -> None:
    app.command("decide")(decide)


def decide(
    ctx: typer.Context,
    deployment_id: Annotated[str, typer.Argument(help="A deployment id (or a unique prefix).")],
    go_on: Annotated[
        bool, typer.Option("--continue", help="Go on with the rollout (the next step).")
    ] = False,
    back: Annotated[
        bool, typer.Option("--rollback", help="Roll the rollout back to the previous version.")
    ] = False,
    reason: Annotated[
        str, typer.Option("--reason", help="Why; kept with the decision and in the audit log.")
    ] = "",
) -> None:
    """Decide on a rollout held on a marginal comparison of the new version with the old.

    A canary step whose comparison is marginal holds the rollout when
    rollback.analysis.on_marginal is hold; without a decision it rolls back after
    rollback.analysis.decision_timeout (30m by default). `deployments show ID` shows the
    comparison's numbers.

    Examples:

      deployops decide dep-20261129-174501-7f3a --continue --reason "spread: cache warming"

      deployops decide dep-20261129-174501-7f3a --rollback
    """
    from deployops.clock import SystemClock
    from deployops.config.access import resolve_identity
    from deployops.engine.observe.decision import decide as record
    from deployops.errors import ConfigError

    app = get_app(ctx)
    if go_on == back:
        raise ConfigError(
            "say --continue or --rollback (exactly one)",
            path="decide",
            hint=f"deployops decide {deployment_id} --continue  (or --rollback)",
        )
    rec = app.store.require_deployment(deployment_id)
    who = app.identity or resolve_identity(app.project.root)
    done = record(
        app.store,
        SystemClock(),
        rec.id,
        decision="continue" if go_on else "rollback",
        actor=who.name,
        reason=reason.strip(),
    )
    if app.json:
        from deployops.store.queries import judgement_json

        app.emit(judgement_json(done))
        return
    app.console.print(
        f"{rec.id}: decided {done.decision} on {done.source} (marginal, score {done.score:g}); "
        "the held rollout goes on with it",
        highlight=False,
    )
