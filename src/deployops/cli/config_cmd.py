"""``deployops config``: validate, render, show and diff the application's settings (CFG-1..5)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from deployops.cli._common import get_app

if TYPE_CHECKING:
    from deployops.cli.app import App
    from deployops.config.appconfig import ConfigPaths, ResolvedConfig, ResolvedValue

group = typer.Typer(
    help=(
        "Per-environment application configuration (CFG-1..5).\n\nExamples:\n\n"
        "  deployops config validate -e production\n\n"
        "  deployops config render -e staging --format ecs\n\n"
        "  deployops config diff staging production"
    ),
    no_args_is_help=True,
)

EnvOpt = Annotated[
    str | None,
    typer.Option("-e", "--env", help="Environment (a file config/environments/ENV.yaml)."),
]
DirOpt = Annotated[
    Path | None,
    typer.Option("--dir", help="Configuration folder (default: config/ beside deployops.yaml)."),
]
FileOpt = Annotated[
    Path | None,
    typer.Option("-f", "--file", help="Check this file instead of config/environments/ENV.yaml."),
]
OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline", help="Check secret references' syntax only; do not ask the secret store."
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="config")


def _paths(app: App, folder: Path | None, file: Path | None = None) -> ConfigPaths:
    from deployops.config.appconfig import ConfigPaths, paths_for

    base = ConfigPaths(dir=folder) if folder is not None else paths_for(app.project)
    return ConfigPaths(dir=base.dir, env_file=file)


def _env(app: App, given: str | None) -> str:
    from deployops.errors import ConfigError

    name = given or app.env
    if not name:
        raise ConfigError(
            "which environment?",
            path="--env",
            hint="pass -e/--env NAME, e.g. deployops config validate -e staging",
        )
    return name


def _warn(app: App, config: ResolvedConfig) -> None:
    for warning in config.warnings:
        app.err.print(f"warning: {warning.render()}", markup=False)


def _resolve(
    app: App, env: str | None, folder: Path | None, file: Path | None, offline: bool
) -> ResolvedConfig:
    from deployops.config.appconfig import resolve

    resolved = resolve(_paths(app, folder, file), _env(app, env), resolve_secrets=not offline)
    _warn(app, resolved)
    return resolved


def _source(value: ResolvedValue) -> str:
    text = f"{value.source.layer.value} ({value.source.location})"
    if value.overridden:
        text += " over " + ", ".join(s.layer.value for s in value.overridden)
    if value.reference is not None:
        text += f" -> {value.reference}"
    return text


@group.command(
    "validate",
    help="Check an environment's settings; every problem at once, each with its fix.\n\n"
    "Exit 0 when valid, 2 when not.\n\nExamples:\n\n  deployops config validate -e production"
    "\n\n  deployops config validate -e production -f candidate.yaml",
)
def validate(
    ctx: typer.Context,
    env: EnvOpt = None,
    folder: DirOpt = None,
    file: FileOpt = None,
    offline: OfflineOpt = False,
) -> None:
    from deployops.config.appconfig import Layer, load, uses_settings
    from deployops.errors import ConfigError

    app = get_app(ctx)
    name = _env(app, env)
    from deployops.config.monitoring import monitoring_warnings

    # MON-1 / IAC-5: an alarm scaling out on the metric target tracking holds makes them fight.
    from deployops.config.rollback import rollback_warnings

    for path, message in monitoring_warnings(app.project.alarms, app.project.autoscaling):
        app.err.print(f"warning: {app.project.path.name}:{path}: {message}", markup=False)
    # A rule that cannot act while the new version is observed protects nothing.
    for path, message in rollback_warnings(app.project):
        app.err.print(f"warning: {app.project.path.name}:{path}: {message}", markup=False)
    paths = _paths(app, folder, file)
    if file is None and folder is None and not uses_settings(app.project, name):
        # A project (or one environment of it) need not use application settings (CFG):
        # deployops.yaml itself loaded and validated above; say so instead of failing on a
        # file it never had.
        absent = paths.dir / "environments"
        if absent.is_dir():
            absent = paths.environment_file(name)
        if app.json:
            app.emit({"environment": name, "valid": True, "settings": 0, "files": []})
        else:
            app.console.print(
                f"{name}: {app.project.path.name} is valid; no application settings "
                f"({absent} does not exist; see docs/configuration.md)"
            )
        return
    resolved, issues = load(paths, name, resolve_secrets=not offline)
    _warn(app, resolved)
    if issues:
        raise ConfigError(
            issues,
            hint=f"fix the lines above, then run `deployops config validate -e {name}` again",
        )
    values = resolved.values.values()
    defaults = sum(1 for v in values if v.source.layer is Layer.DEFAULT)
    refs = sum(1 for v in values if v.reference is not None)
    if app.json:
        app.emit(
            {
                "environment": name,
                "valid": True,
                "settings": len(resolved.values),
                "defaults": defaults,
                "secret_references": refs,
                "files": list(resolved.files),
            }
        )
        return
    app.console.print(
        f"{name}: {len(resolved.values)} settings valid ({defaults} defaults, "
        f"{refs} secret references) — {', '.join(resolved.files)}",
        markup=False,
        soft_wrap=True,
    )


@group.command(
    "render",
    help="Print the resolved settings; secrets show as [REDACTED] (ecs: valueFrom references)."
    "\n\nExamples:\n\n  deployops config render -e staging --format dotenv"
    "\n\n  deployops config render -e production --format ecs",
)
def render_cmd(
    ctx: typer.Context,
    env: EnvOpt = None,
    fmt: Annotated[
        str, typer.Option("--format", help="dotenv, json, or ecs (task definition entries).")
    ] = "dotenv",
    folder: DirOpt = None,
    file: FileOpt = None,
    offline: OfflineOpt = False,
) -> None:
    from deployops.config.appconfig import render
    from deployops.config.appconfig.render import FORMATS
    from deployops.errors import ConfigError

    if fmt not in FORMATS:
        raise ConfigError(
            f"unknown format {fmt!r}", path="--format", hint=f"use one of: {', '.join(FORMATS)}"
        )
    app = get_app(ctx)
    resolved = _resolve(app, env, folder, file, offline)
    if fmt == "ecs" and resolved.literal_secrets:
        app.err.print(
            "warning: "
            + ", ".join(sorted(resolved.literal_secrets))
            + " are literal (development only); a task definition needs secret:// references",
            markup=False,
        )
    sys.stdout.write(render(resolved, fmt))
    sys.stdout.flush()


@group.command(
    "show",
    help="A table of every setting: key, value (secrets redacted) and the layer it came from."
    "\n\nExamples:\n\n  deployops config show -e development",
)
def show(
    ctx: typer.Context,
    env: EnvOpt = None,
    folder: DirOpt = None,
    file: FileOpt = None,
    offline: OfflineOpt = False,
) -> None:
    from rich.table import Table

    app = get_app(ctx)
    resolved = _resolve(app, env, folder, file, offline)
    rows = [resolved.values[k] for k in sorted(resolved.values)]
    if app.json:
        app.emit(
            [
                {
                    "key": v.key,
                    "value": v.display(),
                    "layer": v.source.layer.value,
                    "location": v.source.location,
                    "reference": v.reference,
                    "overrides": [str(s) for s in v.overridden],
                }
                for v in rows
            ]
        )
        return
    table = Table(title=f"{resolved.environment_name} configuration")
    table.add_column("key", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold")
    for value in rows:
        table.add_row(value.key, value.display(), _source(value))
    app.console.print(table)


@group.command(
    "diff",
    help="Compare two environments: keys missing on either side and values that differ."
    "\n\nExamples:\n\n  deployops config diff staging production",
)
def diff_cmd(
    ctx: typer.Context,
    env_a: Annotated[str, typer.Argument(metavar="ENV_A")],
    env_b: Annotated[str, typer.Argument(metavar="ENV_B")],
    folder: DirOpt = None,
) -> None:
    from rich.table import Table

    from deployops.config.appconfig import diff, load

    app = get_app(ctx)
    paths = _paths(app, folder)
    configs = []
    for name in (env_a, env_b):
        resolved, issues = load(paths, name, resolve_secrets=False)
        if issues:
            app.err.print(
                f"note: {name} has {len(issues)} problem(s); "
                f"run `deployops config validate -e {name}`",
                markup=False,
            )
        configs.append(resolved)
    entries = diff(configs[0], configs[1])
    if app.json:
        app.emit([{"key": e.key, "kind": e.kind, env_a: e.a, env_b: e.b} for e in entries])
        return
    if not entries:
        app.console.print(f"{env_a} and {env_b} have the same settings", markup=False)
        return
    table = Table(title=f"{env_a} vs {env_b}")
    table.add_column("key", no_wrap=True)
    table.add_column(env_a, overflow="fold")
    table.add_column(env_b, overflow="fold")
    missing = "(missing)"
    for e in entries:
        table.add_row(
            e.key, e.a if e.a is not None else missing, e.b if e.b is not None else missing
        )
    app.console.print(table)
