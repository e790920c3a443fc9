"""Entry point: global options, command groups, and the one place errors become exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from deployops.cli.app import App

app = typer.Typer(
    name="deployops",
    help=(
        "Deployment operations for a web service: blue-green and rolling deploys behind health "
        "gates, automatic rollback, configuration checks, alarms and recovery.\n\n"
        "Examples:\n\n"
        "  deployops init\n\n"
        "  deployops local up\n\n"
        "  deployops deploy -e staging --version 1.4.0\n\n"
        "  deployops deployments list -o json"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from deployops import __version__

        typer.echo(f"deployops {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("-c", "--config", help="Project file (default: nearest deployops.yaml)."),
    ] = None,
    env: Annotated[
        str | None,
        typer.Option(
            "-e", "--env", help="Environment name from deployops.yaml.", envvar="DEPLOYOPS_ENV"
        ),
    ] = None,
    output: Annotated[
        str, typer.Option("-o", "--output", help="text for people, json for pipelines.")
    ] = "text",
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, help="More detail; tracebacks.")
    ] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors and results.")] = False,
    version: Annotated[  # noqa: ARG001 - handled by its eager callback
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    if output not in ("text", "json"):
        raise typer.BadParameter("use text or json", param_hint="'-o/--output'")
    ctx.obj = App(config_path=config, env=env, output=output, verbose=verbose, quiet=quiet)


def _register() -> None:
    from deployops.cli import (
        alarms_cmd,
        cleanup_cmd,
        config_cmd,
        deploy_cmd,
        deployments_cmd,
        health_cmd,
        init_cmd,
        local_cmd,
        lock_cmd,
        rollback_cmd,
        serve_cmd,
    )

    init_cmd.register(app)
    deploy_cmd.register(app)
    rollback_cmd.register(app)
    health_cmd.register(app)
    deployments_cmd.register(app)
    lock_cmd.register(app)
    config_cmd.register(app)
    local_cmd.register(app)
    alarms_cmd.register(app)
    serve_cmd.register(app)
    cleanup_cmd.register(app)


_register()


# Global options a person also types after the command (`deployops deployments list -o json`):
# moved in front of it before Typer parses, since a group's options must come first there.
_GLOBAL_WITH_VALUE = ("-o", "--output", "-e", "--env", "-c", "--config")
_GLOBAL_FLAGS = ("-q", "--quiet")


def hoist_global_options(argv: list[str]) -> list[str]:
    """``deployops deployments list -o json`` -> ``deployops -o json deployments list``.

    Only after the command word; ``--`` stops the scan; ``-v`` stays where it is.

    >>> hoist_global_options(["deployments", "list", "-o", "json"])
    ['-o', 'json', 'deployments', 'list']
    """
    front: list[str] = []
    rest: list[str] = []
    seen_command = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        name = arg.split("=", 1)[0]
        takes_value = name in _GLOBAL_WITH_VALUE and "=" not in arg
        if not seen_command and not arg.startswith("-"):
            seen_command = True
            rest.append(arg)
        elif not seen_command or name in _GLOBAL_WITH_VALUE or arg in _GLOBAL_FLAGS:
            if seen_command or arg.startswith("-"):
                front.append(arg)
                if takes_value and i + 1 < len(argv):
                    front.append(argv[i + 1])
                    i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main() -> None:
    """Run the CLI; the only place a :class:`DeployopsError` becomes a message and exit code."""
    # -v, -vv, -vvv..., -qv and --verbose all ask for the traceback.
    verbose = any(
        a == "--verbose"
        or (
            a.startswith("-")
            and not a.startswith("--")
            and "v" in a[1:]
            and set(a[1:]) <= {"v", "q"}
        )
        for a in sys.argv[1:]
    )
    try:
        app(args=hoist_global_options(sys.argv[1:]), prog_name="deployops")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the one place every error is rendered
        from deployops.errors import EXIT_FAILED, DeployopsError

        if verbose:
            import traceback

            traceback.print_exc()
        if isinstance(exc, DeployopsError):
            _render_error(exc)
            sys.exit(exc.exit_code)
        sys.stderr.write(
            f"error: internal error: {type(exc).__name__}: {exc}\n"
            "  (run again with -v for the traceback)\n"
        )
        sys.exit(EXIT_FAILED)


def _render_error(exc: Exception) -> None:
    from deployops.errors import ConfigError, DeployopsError

    assert isinstance(exc, DeployopsError)
    if isinstance(exc, ConfigError) and len(exc.issues) > 1:
        sys.stderr.write(f"error: {len(exc.issues)} problems:\n")
        for issue in exc.issues:
            sys.stderr.write(f"  {issue.render()}\n")
        if exc.hint:
            sys.stderr.write(f"  fix: {exc.hint}\n")
        return
    sys.stderr.write(f"error: {exc}\n")
