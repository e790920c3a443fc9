"""A bad ``DEPLOYOPS_DATABASE_URL`` / ``state.url`` is a configuration error (exit 2) that names
the setting, never echoes the URL (it may hold a password) and creates nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployops.errors import EXIT_USAGE, ConfigError, DriverError
from deployops.store import StateStore


@pytest.mark.parametrize(
    "url",
    [
        "nonsense",
        "mysql://deployer:hunter2@db.internal/deployops",
        "postgresql://deployer:hunter2@db.internal:notaport/deployops",
        "postgresql+nosuchdriver://deployer:hunter2@db.internal/deployops",
    ],
)
def test_bad_url_is_a_config_error_without_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        StateStore.open(url)
    err = caught.value
    assert err.exit_code == EXIT_USAGE
    assert err.path == "DEPLOYOPS_DATABASE_URL"
    assert "hunter2" not in str(err)
    assert "\n" not in err.message


def test_unwritable_sqlite_folder_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot create the state folder"):
        StateStore.open(f"sqlite:///{blocker / 'sub' / 'state.db'}")


def test_unreachable_postgres_is_a_one_line_retryable_driver_error() -> None:
    """Port 1 on loopback refuses at once; the password is masked in the hint."""
    with pytest.raises(DriverError) as caught:
        StateStore.open("postgresql://deployer:hunter2@127.0.0.1:1/deployops")
    err = caught.value
    assert err.retryable
    assert "\n" not in err.message
    assert "hunter2" not in str(err)
    assert "127.0.0.1:1" in str(err)


def test_in_memory_sqlite_works_without_touching_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = StateStore.open("sqlite://")
    try:
        assert store.list_deployments() == []
    finally:
        store.close()
    assert list(tmp_path.iterdir()) == []
