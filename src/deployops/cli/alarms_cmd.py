"""``deployops alarms``: alarm states and history (MON-1)."""

from __future__ import annotations

import typer

group = typer.Typer(
    help=(
        "Alarms (MON-1) and their state history.\n\n"
        "Examples:\n\n"
        "  deployops alarms status\n\n"
        "  deployops alarms history HighErrorRate"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="alarms")
