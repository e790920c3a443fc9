"""DR-1 config files (RPO 0, RTO 15 min): each recorded configuration is a Git commit under
``.deployops/config-history``; ``deployops restore config --at TIME`` puts back the files as
they were then (the current ones recorded first), and ``.env.local`` is never recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from deployops.clock import VirtualClock
from deployops.drivers.local.confighistory import ConfigHistory
from deployops.errors import NotFoundError

pytestmark = pytest.mark.integration

DEPLOYOPS = str(Path(sys.executable).parent / "deployops")


def _write(root: Path, port: int) -> None:
    doc = {
        "project": "shop",
        "environments": {"development": {"platform": "local"}},
        "services": {"web": {"port": port, "command": ["python3", "app.py"]}},
    }
    (root / "deployops.yaml").write_text(yaml.safe_dump(doc))


def test_history_restores_the_configuration_in_force_at_a_moment(tmp_path: Path) -> None:
    clock = VirtualClock()
    _write(tmp_path, 18001)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "production.yaml").write_text("LOG_LEVEL: info\n")
    (tmp_path / "config" / ".env.local").write_text("DB_PASSWORD=never-recorded\n")
    history = ConfigHistory(project_root=tmp_path, repo=tmp_path / "hist", clock=clock)
    first = history.record("deploy 1.0.0")
    t1 = clock.now()
    assert first is not None
    assert history.record("nothing changed") is None
    clock.advance(3600)
    _write(tmp_path, 18002)
    (tmp_path / "config" / "production.yaml").write_text("LOG_LEVEL: debug\n")
    assert history.record("deploy 1.1.0") is not None

    version, _written = history.restore(t1 + timedelta(minutes=5))
    assert version.commit == first
    assert (
        yaml.safe_load((tmp_path / "deployops.yaml").read_text())["services"]["web"]["port"]
        == 18001
    )
    assert (tmp_path / "config" / "production.yaml").read_text() == "LOG_LEVEL: info\n"
    assert (
        "never-recorded"
        not in subprocess.run(
            ["git", "-C", str(tmp_path / "hist"), "log", "-p", "--all"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert len(history.versions()) == 2  # nothing new: the current state was already recorded
    with pytest.raises(NotFoundError, match="no configuration was recorded"):
        history.at(t1 - timedelta(days=1))


def test_cli_restore_config_at_and_list(tmp_path: Path) -> None:
    _write(tmp_path, 18003)
    cfg = str(tmp_path / "deployops.yaml")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DEPLOYOPS, "-c", cfg, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert cli("backup", "run", "--target", "config").returncode == 0
    (first,) = json.loads(cli("-o", "json", "restore", "config", "--list").stdout)
    _write(tmp_path, 18004)
    out = cli("-o", "json", "restore", "config", "--at", first["at"])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["files"] == ["deployops.yaml"]
    assert yaml.safe_load(Path(cfg).read_text())["services"]["web"]["port"] == 18003
    assert len(json.loads(cli("-o", "json", "restore", "config", "--list").stdout)) == 2
    missing = cli("restore", "config")
    assert missing.returncode == 2
    assert "--list" in missing.stderr
