"""``deployops access whoami|add-token``: identities and roles (SEC-4)."""

from __future__ import annotations

from typing import Annotated

import typer

from deployops.cli._common import get_app

group = typer.Typer(
    help=(
        "Roles: viewer (reads), deployer (deploys, rolls back, resumes), admin (also reads and "
        "rotates secrets, breaks locks). A token names its holder and role; without a token "
        "your user name is looked up in .deployops/access.yaml.\n\n"
        "Examples:\n\n"
        "  deployops access whoami\n\n"
        "  deployops access add-token ci-pipeline --role deployer"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="access")


@group.command("whoami")
def whoami(ctx: typer.Context) -> None:
    """Who this command line runs as, with which role and how that was decided."""
    from deployops.config.access import resolve_identity

    app = get_app(ctx)
    who = resolve_identity(app.project.root)
    if app.json:
        app.emit({"name": who.name, "role": who.role.value, "via": who.via, "source": who.source})
    else:
        app.console.print(f"{who.name}: {who.role.value} (by {who.via}, from {who.source})")


@group.command("add-token")
def add_token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who holds it, e.g. ci-pipeline or alice.")],
    role: Annotated[str, typer.Option("--role", help="viewer, deployer or admin.")] = "viewer",
) -> None:
    """Create a token (shown once; only its SHA-256 is kept) and turn roles on."""
    from deployops.config.access import access_file_path
    from deployops.config.access import add_token as _add
    from deployops.domain.access import Role
    from deployops.errors import ConfigError

    app = get_app(ctx)
    try:
        parsed = Role.parse(role)
    except ValueError as exc:
        raise ConfigError(str(exc), path="--role", hint="--role deployer") from None
    token = _add(app.project.root, name=name, role=parsed)
    path = access_file_path(app.project.root)
    if app.json:
        app.emit({"name": name, "role": parsed.value, "token": token, "access_file": str(path)})
    else:
        app.info(f"added {name} ({parsed.value}) to {path}; the token is shown once:")
        app.console.print(token)
