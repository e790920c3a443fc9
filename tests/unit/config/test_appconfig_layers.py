"""Layering and provenance (CFG-1), `.env.local` development only (SEC-1), secrets resolved
late, and the deploy engine's hook (DEP-7)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deployops.config.appconfig import ConfigPaths, Layer, load, resolve, resolve_for_deploy
from deployops.config.project import load_project
from deployops.drivers.local.secrets import (
    ChainSecretStore,
    DotenvSecretStore,
    EnvironmentSecretStore,
)
from deployops.errors import ConfigError, NotFoundError, UnsupportedError


def _write(folder: Path, env: str, text: str, schema: str | None = None) -> ConfigPaths:
    (folder / "environments").mkdir(parents=True, exist_ok=True)
    (folder / "environments" / f"{env}.yaml").write_text(text)
    if schema is not None:
        (folder / "schema.yaml").write_text(schema)
    return ConfigPaths(dir=folder)


def test_cfg1_layers_lowest_to_highest_with_provenance(tmp_path: Path) -> None:
    """CFG-1: default -> file -> .env.local -> process env (opt-in); each value knows its
    source and what it overrode."""
    schema = "keys:\n  REDIS_HOST: {from_env: true}\n  LOG_LEVEL: {default: info}\n"
    paths = _write(
        tmp_path,
        "development",
        "APP_NAME: shop\nREDIS_HOST: file-host\nDB_HOST: file-db\nREDIS_PORT: 6379\n",
        schema,
    )
    (tmp_path / ".env.local").write_text("REDIS_HOST=local-host\nDB_HOST=local-db\n")
    environ = {"REDIS_HOST": "env-host", "DB_HOST": "ignored-not-opted-in"}
    cfg = resolve(paths, "development", environ=environ)
    v = cfg.values
    assert v["LOG_LEVEL"].text == "info"
    assert v["LOG_LEVEL"].source.layer is Layer.DEFAULT
    assert v["LOG_LEVEL"].source.location.endswith("schema.yaml")
    assert v["AWS_REGION"].source.location == "built-in schema"
    assert v["REDIS_PORT"].source.layer is Layer.FILE
    assert v["REDIS_PORT"].source.location.endswith("development.yaml:4")
    assert v["DB_HOST"].text == "local-db"
    assert v["DB_HOST"].source.layer is Layer.ENV_LOCAL
    assert v["REDIS_HOST"].text == "env-host"
    assert v["REDIS_HOST"].source.layer is Layer.PROCESS
    assert [s.layer for s in v["REDIS_HOST"].overridden] == [Layer.FILE, Layer.ENV_LOCAL]
    assert v["NODE_ENV"].text == "development"  # defaults to the environment's name


def test_sec1_env_local_is_ignored_with_a_warning_outside_development(tmp_path: Path) -> None:
    """SEC-1: `.env.local` serves development only."""
    paths = _write(tmp_path, "staging", "APP_NAME: shop\nDB_HOST: file-db\n")
    (tmp_path / ".env.local").write_text("DB_HOST=local-db\n")
    cfg = resolve(paths, "staging", environ={})
    assert cfg.values["DB_HOST"].text == "file-db"
    assert [w.path for w in cfg.warnings] == [".env.local"]
    assert "development only" in cfg.warnings[0].message
    store = DotenvSecretStore(path=tmp_path / ".env.local", environment="staging")
    with pytest.raises(UnsupportedError):
        store.get("DB_HOST")


def test_sec1_env_local_literal_password_allowed_in_development_but_kept_secret(
    tmp_path: Path,
) -> None:
    """SEC-1/CFG-3: a development password may be a literal in .env.local; it is a Secret,
    never in the plain environment nor in any rendering."""
    from deployops.config.appconfig import render

    paths = _write(tmp_path, "development", "APP_NAME: shop\n")
    (tmp_path / ".env.local").write_text("DB_PASSWORD='hunter2 two'\n")
    cfg = resolve(paths, "development", environ={})
    assert "DB_PASSWORD" not in cfg.environment
    assert cfg.literal_secrets["DB_PASSWORD"].reveal() == "hunter2 two"
    for fmt in ("dotenv", "json", "ecs"):
        out = render(cfg, fmt)
        assert "hunter2" not in out
        assert "[REDACTED]" in out


def test_cfg3_secret_references_resolve_late_through_the_store(tmp_path: Path) -> None:
    """CFG-3: a reference is checked in the secret store; missing ones are reported, and the
    value's type is checked without ever printing it."""
    paths = _write(
        tmp_path,
        "staging",
        "APP_NAME: shop\nDB_PASSWORD: secret://database-password\nDB_PORT: secret://db-port\n",
    )
    store = EnvironmentSecretStore(environ={"DEPLOYOPS_SECRET_DB_PORT": "not-a-port-xyz"})
    _, issues = load(paths, "staging", secrets=store)
    by_key = {i.path: i.message for i in issues}
    assert "unresolvable secret reference 'secret://database-password'" in by_key["DB_PASSWORD"]
    assert "DEPLOYOPS_SECRET_DATABASE_PASSWORD" in by_key["DB_PASSWORD"]
    assert "whole number" in by_key["DB_PORT"]
    assert "not-a-port-xyz" not in by_key["DB_PORT"]
    ok = EnvironmentSecretStore(
        environ={"DEPLOYOPS_SECRET_DATABASE_PASSWORD": "pw", "DEPLOYOPS_SECRET_DB_PORT": "5432"}
    )
    cfg = resolve(paths, "staging", secrets=ok)
    assert cfg.secrets == {
        "DB_PASSWORD": "secret://database-password",
        "DB_PORT": "secret://db-port",
    }


def test_sec1_development_store_reads_env_local_then_environment(tmp_path: Path) -> None:
    """SEC-1: in development, secret://NAME is looked up in .env.local (NAME or its
    UPPER_SNAKE form), then in DEPLOYOPS_SECRET_<NAME>."""
    dotenv = tmp_path / ".env.local"
    dotenv.write_text("DATABASE_PASSWORD=from-file\n")
    chain = ChainSecretStore(
        stores=(
            DotenvSecretStore(path=dotenv),
            EnvironmentSecretStore(environ={"DEPLOYOPS_SECRET_JWT_SECRET": "from-env"}),
        )
    )
    assert chain.get("database-password").reveal() == "from-file"
    assert chain.get("jwt-secret").reveal() == "from-env"
    with pytest.raises(NotFoundError) as info:
        chain.get("api-keys")
    assert "env.local" in str(info.value)
    assert "environment" in str(info.value)


def _project(tmp_path: Path) -> Path:
    doc = {
        "project": "shop-api",
        "environments": {"production": {"platform": "local"}},
        "services": {"web": {"port": 18080, "command": ["python3", "app.py"]}},
    }
    path = tmp_path / "deployops.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_dep7_deploy_hook_refuses_an_invalid_configuration(tmp_path: Path) -> None:
    """DEP-7/CFG-3: the engine's hook raises every issue, so the deploy never starts."""
    project = load_project(_project(tmp_path))
    _write(tmp_path / "config", "production", "APP_NAME: shop\nNODE_ENV: production\n")
    with pytest.raises(ConfigError) as info:
        resolve_for_deploy(project, "production", environ={})
    missing = {i.path for i in info.value.issues}
    assert missing == {"DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD"}
    assert all("required in production" in i.message for i in info.value.issues)


def test_dep7_deploy_hook_yields_environment_and_secret_references(tmp_path: Path) -> None:
    """DEP-7/CFG-2: the hook returns plain values and references for the task definition."""
    project = load_project(_project(tmp_path))
    _write(
        tmp_path / "config",
        "production",
        "APP_NAME: shop\nDB_HOST: db.internal\nDB_PORT: 5432\nDB_NAME: shop\nDB_USER: app\n"
        "DB_PASSWORD: secret://database-password\n",
    )
    store = EnvironmentSecretStore(environ={"DEPLOYOPS_SECRET_DATABASE_PASSWORD": "pw"})
    cfg = resolve_for_deploy(project, "production", secrets=store, environ={})
    assert cfg.environment == {
        "NODE_ENV": "production",
        "APP_NAME": "shop",
        "DB_HOST": "db.internal",
        "DB_PORT": "5432",
        "DB_NAME": "shop",
        "DB_USER": "app",
        "AWS_REGION": "ap-northeast-1",
    }
    assert cfg.secrets == {"DB_PASSWORD": "secret://database-password"}


def test_cfg1_project_without_config_folder_deploys_with_empty_settings(tmp_path: Path) -> None:
    """CFG-1 is optional: no config/ folder means no application settings, and no PORT."""
    project = load_project(_project(tmp_path))
    cfg = resolve_for_deploy(project, "production")
    assert cfg.environment == {}
    assert cfg.secrets == {}


def test_cfg1_unknown_environment_names_the_files_that_exist(tmp_path: Path) -> None:
    paths = _write(tmp_path, "staging", "APP_NAME: shop\n")
    with pytest.raises(ConfigError) as info:
        load(paths, "stagign", environ={})
    assert "did you mean 'staging'" in str(info.value)
    assert info.value.path == "--env"
