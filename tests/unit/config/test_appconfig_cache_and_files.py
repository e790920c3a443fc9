"""The cache settings (CFG-4: ``REDIS_HOST``, ``REDIS_PORT``) validated like the other
categories, messages whose examples fit the key, and environment files that are independent
of each other (CFG-1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deployops.config.appconfig import ConfigPaths, load, resolve, resolve_for_deploy
from deployops.config.project import load_project
from deployops.errors import ConfigError

DEPLOYOPS = Path(sys.executable).parent / "deployops"


def _paths(tmp_path: Path, env: str, text: str) -> ConfigPaths:
    folder = tmp_path / "config"
    (folder / "environments").mkdir(parents=True, exist_ok=True)
    (folder / "environments" / f"{env}.yaml").write_text(text, encoding="utf-8")
    return ConfigPaths(dir=folder)


def _issues(tmp_path: Path, text: str, env: str = "staging") -> dict[str, str]:
    _, issues = load(_paths(tmp_path, env, "APP_NAME: shop\n" + text), env, environ={})
    return {i.path: i.message for i in issues}


def test_cfg4_cache_host_and_port_resolve(tmp_path: Path) -> None:
    paths = _paths(tmp_path, "staging", "APP_NAME: shop\nREDIS_HOST: cache.internal\n")
    cfg = resolve(paths, "staging", environ={})
    assert cfg.environment["REDIS_HOST"] == "cache.internal"
    cfg = resolve(
        _paths(tmp_path, "staging", "APP_NAME: shop\nREDIS_HOST: 10.0.3.7\nREDIS_PORT: 6380\n"),
        "staging",
        environ={},
    )
    assert (cfg.environment["REDIS_HOST"], cfg.environment["REDIS_PORT"]) == ("10.0.3.7", "6380")


@pytest.mark.parametrize(
    ("line", "key", "expected"),
    [
        ("REDIS_HOST: 'cache internal'", "REDIS_HOST", "not a host name or IP address"),
        ("REDIS_HOST: -cache.internal", "REDIS_HOST", "not a host name or IP address"),
        ("REDIS_PORT: six", "REDIS_PORT", "write e.g. REDIS_PORT: 6379"),
        ("REDIS_PORT: 0", "REDIS_PORT", "below the minimum 1"),
        ("REDIS_PORT: 70000", "REDIS_PORT", "above the maximum 65535"),
        ("REDIS_HSOT: cache.internal", "REDIS_HSOT", "did you mean 'REDIS_HOST'"),
    ],
)
def test_cfg4_bad_cache_settings_are_named_with_their_fix(
    tmp_path: Path, line: str, key: str, expected: str
) -> None:
    issues = _issues(tmp_path, line + "\n")
    assert expected in issues[key], issues


def test_a_port_that_is_not_a_number_suggests_a_port_of_its_kind(tmp_path: Path) -> None:
    """PORT's example is an application port, not PostgreSQL's."""
    assert "write e.g. PORT: 3000" in _issues(tmp_path, "PORT: http\n")["PORT"]
    assert "5432" not in _issues(tmp_path, "PORT: http\n")["PORT"]
    assert "write e.g. DB_PORT: 5432" in _issues(tmp_path, "DB_PORT: pg\n")["DB_PORT"]


def _project(tmp_path: Path) -> Path:
    doc = {
        "project": "shop-api",
        "environments": {"staging": {"platform": "local"}, "production": {"platform": "local"}},
        "services": {"web": {"port": 18080, "command": ["python3", "app.py"]}},
    }
    path = tmp_path / "deployops.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_cfg1_adding_one_environment_file_does_not_break_the_others(tmp_path: Path) -> None:
    """production.yaml exists, staging.yaml does not: staging still deploys (no application
    settings), production is judged on its file, and a name deployops.yaml does not know is
    still reported with the files that exist."""
    project = load_project(_project(tmp_path))
    _paths(tmp_path, "production", "APP_NAME: shop\nNODE_ENV: production\n")
    staging = resolve_for_deploy(project, "staging", environ={})
    assert (staging.environment, staging.secrets) == ({}, {})
    with pytest.raises(ConfigError) as info:
        resolve_for_deploy(project, "production", environ={})
    assert "DB_HOST" in {i.path for i in info.value.issues}
    with pytest.raises(ConfigError, match="did you mean 'production'"):
        resolve_for_deploy(project, "productoin", environ={})

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.run(
        [str(DEPLOYOPS), "config", "validate", "-e", "staging", "--offline"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no application settings" in proc.stdout
    assert "staging.yaml does not exist" in proc.stdout
