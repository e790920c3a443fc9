"""``deployops local``."""

from __future__ import annotations

import typer

group = typer.Typer(
    help="The embedded local platform: replicas behind HAProxy, metrics, PostgreSQL.\n\nExamples:\n\n  deployops local up\n\n  deployops local status -o json\n\n  deployops local down",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="local")
