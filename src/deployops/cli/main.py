"""Entry point: global options, command groups, and the one place errors become exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from deployops.cli.app import App


class _Root(TyperGroup):
    """Keeps the command words so the global callback can check the caller's role (SEC-4)
    before any command runs (Click resolves a subcommand's own words only after it)."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        ctx.meta["deployops.words"] = list(args)
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_Root,
    name="deployops",
    help=(
        "Deployment operations for a web service: blue-green and rolling deploys behind health "
        "gates, automatic rollback, configuration checks, alarms, secrets and recovery.\n\n"
        "Exit codes: 0 done, 1 failed, 2 bad configuration or usage, 3 rolled back, 4 lock "
        "held, 5 access denied (your role does not allow the command; the message names the "
        "role needed).\n\n"
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
    # SEC-4: the role check of mutating commands (cli/access.py); --help changes nothing
    words = [w for w in ctx.meta.get("deployops.words", []) if not w.startswith("-")]
    if ctx.invoked_subcommand and not {"--help", "-h"} & set(ctx.meta.get("deployops.words", [])):
        from deployops.cli import access

        access.check(ctx.obj, words)


def _register() -> None:
    from deployops.cli import (
        access_cmd,
        alarms_cmd,
        audit_cmd,
        backup_cmd,
        checklist_cmd,
        cleanup_cmd,
        config_cmd,
        db_cmd,
        decide_cmd,
        deploy_cmd,
        deployments_cmd,
        dr_cmd,
        health_cmd,
        init_cmd,
        local_cmd,
        lock_cmd,
        logs_cmd,
        notifications_cmd,
        restore_cmd,
        rollback_cmd,
        rules_cmd,
        secrets_cmd,
        serve_cmd,
    )

    init_cmd.register(app)
    deploy_cmd.register(app)
    rollback_cmd.register(app)
    decide_cmd.register(app)
    rules_cmd.register(app)
    health_cmd.register(app)
    deployments_cmd.register(app)
    lock_cmd.register(app)
    config_cmd.register(app)
    local_cmd.register(app)
    alarms_cmd.register(app)
    serve_cmd.register(app)
    checklist_cmd.register(app)
    audit_cmd.register(app)
    secrets_cmd.register(app)
    access_cmd.register(app)
    cleanup_cmd.register(app)
    db_cmd.register(app)
    backup_cmd.register(app)
    restore_cmd.register(app)
    dr_cmd.register(app)
    logs_cmd.register(app)
    notifications_cmd.register(app)


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
    from deployops.cli import access

    try:
        try:
            if _json_output(sys.argv[1:]):
                _run_json(hoist_global_options(sys.argv[1:]))
            else:
                app(args=hoist_global_options(sys.argv[1:]), prog_name="deployops")
        except SystemExit as done:
            access.finish(done.code if isinstance(done.code, int) else 1)
            raise
        except BaseException as exc:
            access.finish(getattr(exc, "exit_code", 1))
            raise
        else:  # -o json runs without the parser's own exit
            access.finish(0)
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
        if _json_output(sys.argv[1:]):
            import json

            internal = {
                "ok": False,
                "code": "internal_error",
                "exit_code": EXIT_FAILED,
                "message": f"internal error: {type(exc).__name__}: {exc}",
                "fix": "run again with -v for the traceback",
                "path": "",
            }
            sys.stdout.write(json.dumps(internal) + "\n")
        sys.stderr.write(
            f"error: internal error: {type(exc).__name__}: {exc}\n"
            "  (run again with -v for the traceback)\n"
        )
        sys.exit(EXIT_FAILED)


def entry() -> None:
    """The ``deployops`` console script: :func:`main`, then a quick exit.

    Tearing down an interpreter that has loaded SQLAlchemy, pydantic and Rich took 0.4-1.6 s
    on a busy 2-core machine, after the work was done; exiting at once took 20-100 ms. What a
    normal exit does that matters still runs first: other threads are joined, ``atexit``
    handlers run (notification deliveries, logging), and stdout and stderr are flushed."""
    code: int = 0
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, int):
            code = exc.code
        elif exc.code is not None:
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    _exit_now(code)


def _exit_now(code: int) -> None:
    import atexit
    import os
    import threading

    # What a normal exit does first: threading's exit hooks (they tell thread-pool workers,
    # e.g. notification deliveries, to finish) and then the join of non-daemon threads.
    # Joining without the hooks first waits forever on an idle pool worker.
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None and threading.current_thread() is threading.main_thread():
        shutdown()
    else:
        for th in threading.enumerate():
            if th is not threading.current_thread() and not th.daemon:
                th.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            code = code or 1
    os._exit(code)


def _run_json(args: list[str]) -> None:
    """Run with ``-o json``: a usage error (unknown command or option, missing value) is a
    JSON object on stdout too, not only the usage text on stderr."""
    import json

    from deployops.errors import EXIT_USAGE, DeployopsError

    try:
        result = app(args=args, prog_name="deployops", standalone_mode=False)
    except Exception as exc:
        # The command-line parser's errors carry format_message() and exit_code.
        if isinstance(exc, DeployopsError) or not hasattr(exc, "format_message"):
            raise
        message = str(exc.format_message())
        ctx = getattr(exc, "ctx", None)
        where = str(getattr(ctx, "command_path", "") or "deployops")
        if "No such command" in message:
            where = "deployops"
        fix = f"`{where} --help` shows the {'commands' if where == 'deployops' else 'options'}"
        code = int(getattr(exc, "exit_code", EXIT_USAGE) or EXIT_USAGE)
        param = getattr(exc, "param", None)
        body = {
            "ok": False,
            "code": "usage",
            "exit_code": code,
            "message": message,
            "fix": fix,
            "path": str(getattr(param, "name", "") or ""),
        }
        sys.stdout.write(json.dumps(body) + "\n")
        sys.stderr.write(f"error: {message}\n  fix: {fix}\n")
        sys.exit(code)
    if isinstance(result, int) and result:
        sys.exit(result)


def _json_output(argv: list[str]) -> bool:
    """Whether ``-o json`` was asked for (wherever on the line)."""
    args = hoist_global_options(argv)
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in ("-o", "--output") and i + 1 < len(args) and args[i + 1] == "json":
            return True
        if arg in ("-ojson", "--output=json", "-o=json"):
            return True
    return False


_ERROR_CODES = {
    "ConfigError": "bad_config",
    "NotFoundError": "not_found",
    "UnsupportedError": "unsupported",
    "PlatformUnavailableError": "platform_unavailable",
    "DriverError": "driver_failed",
    "TimeoutError_": "timeout",
    "DeploymentError": "deployment_failed",
    "RolledBackError": "rolled_back",
    "RollbackError": "rollback_failed",
    "LockHeldError": "lock_held",
    "BackupError": "backup_failed",
    "RotationError": "rotation_failed",
}


def error_json(exc: Exception) -> dict[str, object]:
    """A failure as one JSON object (``-o json``): code, exit code, message, fix and path, and
    every issue of a bad configuration."""
    from deployops.errors import ConfigError, DeployopsError, LockHeldError

    assert isinstance(exc, DeployopsError)
    code = next(
        (_ERROR_CODES[c.__name__] for c in type(exc).__mro__ if c.__name__ in _ERROR_CODES),
        "failed",
    )
    out: dict[str, object] = {
        "ok": False,
        "code": code,
        "exit_code": exc.exit_code,
        "message": exc.message,
        "fix": exc.hint or "",
        "path": exc.path if isinstance(exc, ConfigError) else "",
    }
    if isinstance(exc, ConfigError):
        out["issues"] = [
            {"path": i.path, "message": i.message, "file": i.file or ""} for i in exc.issues
        ]
    if isinstance(exc, LockHeldError):
        out["lock"] = {
            "key": exc.key,
            "owner": exc.owner,
            "reason": exc.reason,
            "since": exc.since,
            "holder_running": not exc.holder_dead,
            "deployment_id": exc.deployment_id,
        }
    return out


def _render_error(exc: Exception) -> None:
    import json

    from deployops.errors import ConfigError, DeployopsError, RolledBackError

    assert isinstance(exc, DeployopsError)
    if _json_output(sys.argv[1:]):
        sys.stdout.write(json.dumps(error_json(exc)) + "\n")
        sys.stdout.flush()
    if isinstance(exc, RolledBackError):
        # A rollback that worked is an outcome (exit 3), not an error.
        sys.stderr.write(f"{exc}\n")
        return
    if isinstance(exc, ConfigError) and len(exc.issues) > 1:
        sys.stderr.write(f"error: {len(exc.issues)} problems:\n")
        for issue in exc.issues:
            sys.stderr.write(f"  {issue.render()}\n")
        if exc.hint:
            sys.stderr.write(f"  fix: {exc.hint}\n")
        return
    sys.stderr.write(f"error: {exc}\n")
