"""``deployops audit list|verify``: the hash-chained audit log (SEC-4)."""

from __future__ import annotations

from typing import Annotated

import typer

from deployops.cli._common import fmt_time, get_app

group = typer.Typer(
    help=(
        "The audit log: who did what, when, from where, with which outcome (never a secret "
        "value). Entries are chained by hashes, so an edited or removed entry is detected.\n\n"
        "Examples:\n\n"
        "  deployops audit list --limit 20\n\n"
        "  deployops audit verify\n\n"
        "  deployops audit verify --head 3f2a9c... -o json"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="audit")


@group.command("list")
def list_(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest N entries.")] = 50,
    action: Annotated[str, typer.Option("--action", help="Only this action, e.g. deploy.")] = "",
) -> None:
    """Show the newest audit entries, newest first."""
    app = get_app(ctx)
    entries = [
        e
        for e in app.store.audit_log(limit=None if action else limit)
        if not action or e.action == action
    ][:limit]
    if app.json:
        app.emit(
            [
                {
                    "id": e.id,
                    "ts": e.ts.isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "source": e.source,
                    "outcome": e.outcome,
                    "detail": e.detail,
                    "hash": e.hash,
                }
                for e in entries
            ]
        )
        return
    if not entries:
        app.console.print("the audit log is empty")
        return
    for e in entries:
        where = f" from {e.source}" if e.source else ""
        target = f" {e.target}" if e.target else ""
        app.console.print(
            f"#{e.id}  {fmt_time(e.ts)}  {e.actor}{where}: {e.action}{target} -> {e.outcome}"
        )


@group.command("verify")
def verify(
    ctx: typer.Context,
    head: Annotated[
        str,
        typer.Option(
            "--head",
            help="A head hash written down earlier: fails if it is no longer in the chain "
            "(the newest entries were removed).",
        ),
    ] = "",
) -> None:
    """Check every entry's hash: exit 1 naming the first entries that were edited or removed."""
    from deployops.domain.audit import verify_chain
    from deployops.errors import DeployopsError
    from deployops.store.store import audit_fields

    app = get_app(ctx)
    entries = app.store.audit_log(limit=None, oldest_first=True)
    problems = verify_chain(
        (
            int(e.id or 0),
            e.prev_hash or "",
            e.hash,
            audit_fields(
                int(e.id or 0), e.ts, e.actor, e.action, e.target, e.detail, e.source, e.outcome
            ),
        )
        for e in entries
    )
    hashes = {e.hash for e in entries}
    if head and head not in hashes:
        from deployops.domain.audit import ChainProblem

        problems.append(
            ChainProblem(
                0, f"the head {head[:12]}... is not in the log: newer entries were removed"
            )
        )
    newest = entries[-1].hash if entries else ""
    if app.json:
        app.emit(
            {
                "ok": not problems,
                "entries": len(entries),
                "head": newest,
                "problems": [{"entry": p.entry_id, "message": p.message} for p in problems],
            }
        )
    elif not problems:
        app.console.print(f"audit log intact: {len(entries)} entries, head {newest}")
    if problems:
        if app.json:  # the report above is the one JSON document; exit 1 says it failed
            raise typer.Exit(1)
        for p in problems[:20]:
            app.err.print(f"entry #{p.entry_id} {p.message}")
        raise DeployopsError(
            f"the audit log fails verification ({len(problems)} problem(s))",
            hint="restore the state database from its backup and compare with "
            "`deployops audit list -o json`; see docs/runbooks/leaked-secret.md",
        )
