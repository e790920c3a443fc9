"""The deployed application's per-environment settings (CFG-1..5): schema, layers, validation,
rendering, and the hook the deploy engine calls before any step.

>>> from deployops.config.appconfig import ConfigPaths, resolve
>>> cfg = resolve(ConfigPaths(dir=Path("config")), "staging")        # doctest: +SKIP
>>> cfg.environment["NODE_ENV"], cfg.secrets.get("DB_PASSWORD")       # doctest: +SKIP
('staging', 'secret://database-password')
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from deployops.config.appconfig.loader import (
    SECRET_PREFIX,
    ConfigPaths,
    ResolvedConfig,
    ResolvedValue,
    default_secret_store,
    load,
    load_schema,
    resolve,
)
from deployops.config.appconfig.render import DiffEntry, diff, render
from deployops.config.appconfig.schema import DEFAULT_SCHEMA, AppSchema, FieldSpec, parse_schema
from deployops.config.appconfig.sources import Layer, Source, parse_dotenv, parse_env_yaml
from deployops.config.project import ProjectConfig
from deployops.ports import SecretStore

__all__ = [
    "APP_CONFIG_DIR",
    "DEFAULT_SCHEMA",
    "SECRET_PREFIX",
    "AppSchema",
    "ConfigPaths",
    "DiffEntry",
    "FieldSpec",
    "Layer",
    "ResolvedConfig",
    "ResolvedValue",
    "Source",
    "default_secret_store",
    "diff",
    "load",
    "load_schema",
    "parse_dotenv",
    "parse_env_yaml",
    "parse_schema",
    "paths_for",
    "render",
    "resolve",
    "resolve_for_deploy",
    "uses_settings",
]

APP_CONFIG_DIR = "config"


def paths_for(project: ProjectConfig) -> ConfigPaths:
    """The application configuration of a project: ``<project root>/config``."""
    return ConfigPaths(dir=project.root / APP_CONFIG_DIR)


def resolve_for_deploy(
    project: ProjectConfig,
    environment: str,
    *,
    secrets: SecretStore | None = None,
    environ: Mapping[str, str] | None = None,
) -> ResolvedConfig:
    """Called by the deploy engine before any step (DEP-7): a deploy with an invalid
    configuration never starts.

    Raises :class:`~deployops.errors.ConfigError` with every issue. Returns the settings for the
    task definition: ``.environment`` (plain values) and ``.secrets`` (key → ``secret://NAME``).
    A project without ``config/environments/`` does not use CFG: the result is empty. So is an
    environment of ``deployops.yaml`` without its own file: environment files are independent
    (adding ``production.yaml`` does not oblige staging to have one).
    """
    paths = paths_for(project)
    if not uses_settings(project, environment):
        return ResolvedConfig.empty(environment)
    return resolve(paths, environment, secrets=secrets, environ=environ)


def uses_settings(project: ProjectConfig, environment: str) -> bool:
    """Whether ``environment`` has application settings: ``config/environments/ENV.yaml``
    exists, or the environment is not one of ``deployops.yaml`` (then the loader reports the
    missing file, with the names that do exist)."""
    paths = paths_for(project)
    if not (paths.dir / "environments").is_dir():
        return False
    return paths.environment_file(environment).is_file() or (
        environment not in project.environments
    )


_ = Path  # re-exported for the doctest above
