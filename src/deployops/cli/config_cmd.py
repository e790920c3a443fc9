"""``deployops config``."""

from __future__ import annotations

import typer

group = typer.Typer(
    help="Per-environment application configuration (CFG-1..5).\n\nExamples:\n\n  deployops config validate -e production\n\n  deployops config render -e staging --format ecs\n\n  deployops config diff staging production",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="config")
