"""The ``secrets:`` section of deployops.yaml (SEC-1, SEC-2): stores per environment, managed
secrets with kind and period; bad input is named with its path and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deployops.clock import SystemClock
from deployops.config.project import load_project
from deployops.drivers.local.encrypted import EncryptedFileSecretStore
from deployops.drivers.secrets import build_secret_store, rotating_store
from deployops.errors import ConfigError, UnsupportedError

BASE = {
    "project": "shop",
    "environments": {"development": {}, "staging": {}, "production": {}},
    "services": {"web": {"port": 8080, "command": ["python", "app.py"]}},
}


def _write(tmp_path: Path, secrets: dict[str, object]) -> Path:
    path = tmp_path / "deployops.yaml"
    path.write_text(yaml.safe_dump({**BASE, "secrets": secrets}))
    return path


def test_sec1_env_local_for_staging_is_refused_naming_the_fix(tmp_path: Path) -> None:
    path = _write(tmp_path, {"stores": {"staging": {"type": "env.local"}}})
    with pytest.raises(ConfigError) as info:
        load_project(path)
    text = str(info.value)
    assert "secrets.stores.staging.type" in text
    assert "development only" in text and "encrypted-file" in text


def test_sec2_managed_secrets_with_kind_and_period(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "stores": {"production": {"type": "encrypted-file"}},
            "managed": {
                "database-password": {"rotation": "30d"},
                "partner-key": {"kind": "api-keys"},
            },
        },
    )
    cfg = load_project(path)
    periods = {s.name: (s.kind.value, s.period_days) for s in cfg.secrets.managed_secrets()}
    assert periods == {
        "database-password": ("database-password", 30),
        "partner-key": ("api-keys", 180),
    }
    store = build_secret_store(cfg, "production", clock=SystemClock())
    assert isinstance(store.inner, EncryptedFileSecretStore)
    assert store.inner.key_file == tmp_path / ".deployops" / "secrets" / "production.key"
    # a fetch-only store cannot rotate: the error names what to configure
    with pytest.raises(UnsupportedError, match=r"secrets\.stores\.staging\.type"):
        rotating_store(
            build_secret_store(cfg, "staging", clock=SystemClock()), environment="staging"
        )


def test_sec2_unknown_kind_and_store_type_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path, {"stores": {"production": {"type": "vault"}}})
    with pytest.raises(ConfigError) as info:
        load_project(path)
    assert "secrets.stores.production.type" in str(info.value)
    assert "aws-secrets-manager" in str(info.value)
    path = _write(tmp_path, {"managed": {"my-token": {}}})
    with pytest.raises(ConfigError) as info:
        load_project(path)
    assert "secrets.managed.my-token.kind" in str(info.value)
    assert "jwt-secret" in str(info.value)
