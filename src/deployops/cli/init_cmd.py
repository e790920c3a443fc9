"""``deployops init``: write an annotated deployops.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deployops.cli._common import get_app

TEMPLATE = Path(__file__).resolve().parent.parent / "config" / "templates" / "deployops.yaml"


def register(app: typer.Typer) -> None:
    app.command(
        "init",
        help=(
            "Write an annotated deployops.yaml in the current folder.\n\n"
            "Examples:\n\n"
            "  deployops init\n\n"
            "  deployops init --project shop-api --force"
        ),
    )(init)


def init(
    ctx: typer.Context,
    project: Annotated[
        str | None, typer.Option("--project", help="Project name (default: folder name).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    import re

    from deployops.errors import ConfigError

    app = get_app(ctx)
    target = app.config_path or Path.cwd() / "deployops.yaml"
    if target.exists() and not force:
        raise ConfigError(
            f"{target} already exists",
            path="deployops.yaml",
            hint="pass --force to overwrite it, or edit it and run `deployops config validate`",
        )
    name = project or re.sub(r"[^a-z0-9-]+", "-", target.resolve().parent.name.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = "my-service"
    text = TEMPLATE.read_text(encoding="utf-8").replace("my-service", name)
    target.write_text(text, encoding="utf-8")
    if app.json:
        app.emit({"written": str(target), "project": name})
    else:
        app.console.print(
            f"wrote {target}\nnext: edit services.web.command, then `deployops local up` and "
            "`deployops deploy -e development --version 1.0.0`"
        )
