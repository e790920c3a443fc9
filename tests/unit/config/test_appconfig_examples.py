"""The annotated example configuration under examples/config is loaded as a fixture (CFG-1..5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployops.config.appconfig import ConfigPaths, Layer, load, resolve
from deployops.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "config"
SECRETS = {
    "DEPLOYOPS_SECRET_DATABASE_PASSWORD": "s3cret-db-pw",
    "DEPLOYOPS_SECRET_JWT_SECRET": "s3cret-jwt",
}


@pytest.mark.parametrize("environment", ["development", "staging", "production"])
def test_cfg1_example_environment_files_are_valid(environment: str) -> None:
    """CFG-1: one file per environment, validated against the (extended) schema."""
    cfg, issues = load(ConfigPaths(dir=EXAMPLES), environment, environ=SECRETS)
    assert issues == []
    assert cfg.environment["NODE_ENV"] == environment  # CFG-2
    assert cfg.environment["APP_NAME"] == "shop-api"
    assert cfg.environment["AWS_REGION"] == "ap-northeast-1"  # CFG-5 default or explicit


def test_cfg3_cfg4_cfg5_production_settings_and_secret_references() -> None:
    """CFG-3..5: database, cache and AWS settings; the password stays a reference."""
    cfg = resolve(ConfigPaths(dir=EXAMPLES), "production", environ=SECRETS)
    env = cfg.environment
    assert env["DB_PORT"] == "5432"
    assert env["DB_NAME"] == "shop"
    assert env["REDIS_HOST"] == "shop-prod.cache.internal"
    assert env["REDIS_PORT"] == "6379"
    assert env["S3_BUCKET"] == "shop-prod-uploads"
    assert cfg.secrets == {
        "DB_PASSWORD": "secret://database-password",
        "JWT_SECRET": "secret://jwt-secret",
    }
    assert "DB_PASSWORD" not in env
    assert "s3cret-db-pw" not in repr(cfg)
    # CFG-2: PORT is set by the platform per replica, so a deploy never forces the default.
    assert "PORT" not in env
    assert cfg.values["PORT"].text == "3000"
    assert cfg.values["LOG_LEVEL"].source.layer is Layer.FILE
    assert cfg.values["FEATURE_NEW_CHECKOUT"].source.layer is Layer.DEFAULT


def test_cfg1_faulty_production_reports_all_five_planted_faults_in_one_run() -> None:
    """CFG-1/2/3/5: five faults, one ConfigError, each with file:line, key and fix."""
    paths = ConfigPaths(dir=EXAMPLES, env_file=EXAMPLES / "faulty" / "production.yaml")
    with pytest.raises(ConfigError) as info:
        resolve(paths, "production", environ=SECRETS)
    issues = {i.path: i for i in info.value.issues}
    assert set(issues) == {"NODE_ENV", "DB_PORT", "DB_PASSWORD", "REDIS_HOTS", "AWS_REGION"}
    assert "must equal the environment's name" in issues["NODE_ENV"].message
    assert "whole number" in issues["DB_PORT"].message
    assert "literal value is not allowed in production" in issues["DB_PASSWORD"].message
    assert "secret://" in issues["DB_PASSWORD"].message
    assert "did you mean 'REDIS_HOST'" in issues["REDIS_HOTS"].message
    assert "not an AWS region" in issues["AWS_REGION"].message
    assert issues["DB_PASSWORD"].file is not None
    assert issues["DB_PASSWORD"].file.endswith("faulty/production.yaml:9")
    text = str(info.value)
    assert "plant3d-Pa55word" not in text  # the planted literal password is never echoed
