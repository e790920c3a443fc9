"""A rotation is an operation on the one runner (SEC-3): locked, listed with the other
operations, each step stored, and ``deployops resume`` finishes one killed mid-way.

The real console script on a project with the local encrypted store and no platform running
(the API keys have no target and no replica reads them here, so no step needs one). The kill
is the runner's test-only fault point (``DEPLOYOPS_TEST_CRASH_AT``): the process SIGKILLs
itself between the Promote act and its stored outcome.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployops.domain.secrets import Stage
from deployops.drivers.local.encrypted import EncryptedFileSecretStore
from tests.fixtures_local import ENV, write_project

pytestmark = [pytest.mark.integration]

DEPLOYOPS = Path(sys.executable).parent / "deployops"


@pytest.fixture
def root() -> Iterator[Path]:
    import shutil

    folder = Path(tempfile.mkdtemp(prefix="dops-rot-"))
    path = write_project(folder)
    doc = yaml.safe_load(path.read_text())
    doc["secrets"] = {"stores": {ENV: {"type": "encrypted-file"}}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _crash(root: Path, *args: str, crash_at: str) -> subprocess.CompletedProcess[str]:
    """The real console script in its own process, killed at ``crash_at``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOYOPS_", "AWS_"))}
    env["DEPLOYOPS_TEST_CRASH_AT"] = crash_at
    return subprocess.run(
        [str(DEPLOYOPS), "-e", ENV, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _current_count(root: Path, name: str) -> int:
    store = EncryptedFileSecretStore(
        path=root / ".deployops" / "secrets" / f"{ENV}.json",
        key_file=root / ".deployops" / "secrets" / f"{ENV}.key",
    )
    return sum(Stage.CURRENT in v.stages for v in store.describe(name).versions)


def test_sec3_rotation_is_an_operation_listed_shown_and_resumed_after_kill_9(
    root: Path, cli: Callable[..., Any]
) -> None:
    def _run(*args: str, **env: str) -> Any:
        return cli(root, "-e", ENV, *args, env=env)

    assert _run("secrets", "keygen").returncode == 0
    first = _run("secrets", "rotate", "api-keys")
    assert first.returncode == 0, first.stderr

    listed = _run("deployments", "list", "--kind", "rotate", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["kind"] == "rotate" and row["target"] == "secret:api-keys"
    assert row["status"] == "succeeded" and row["id"].startswith("rot-")
    # deployments alone by default; every kind with --kind all
    assert json.loads(_run("deployments", "list", "-o", "json").stdout) == []
    every = json.loads(_run("deployments", "list", "--kind", "all", "-o", "json").stdout)
    assert [r["id"] for r in every] == [row["id"]]
    shown = json.loads(_run("deployments", "show", row["id"], "-o", "json").stdout)
    assert [s["name"] for s in shown["steps"]] == [
        "CreatePending",
        "SetOnTarget",
        "TestPending",
        "Promote",
        "RestartReplicas",
        "VerifyCurrent",
    ]
    assert {s["status"] for s in shown["steps"]} == {"succeeded"}
    kinds = [e["kind"] for e in shown["events"]]
    assert kinds[0] == "rotation.started" and kinds[-1] == "rotation.completed"

    # killed after the new value was promoted, before the outcome was stored
    crashed = _crash(root, "secrets", "rotate", "api-keys", crash_at="rotate:3:before-outcome")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert _current_count(root, "api-keys") == 1
    status = json.loads(_run("secrets", "status", "-o", "json").stdout)
    [running] = status["running"]
    assert running["secret"] == "api-keys"
    locks = json.loads(_run("lock", "list", "-o", "json").stdout)
    assert [lk["key"] for lk in locks] == [f"{ENV}/secret:api-keys"]

    # a deployer may resume deployments, not rotations
    token = json.loads(
        _run("access", "add-token", "dee", "--role", "deployer", "-o", "json").stdout
    )["token"]
    refused = _run("resume", running["id"], DEPLOYOPS_TOKEN=token)
    assert refused.returncode == 5, refused.stderr
    assert "needs the role admin" in refused.stderr

    admin = json.loads(_run("access", "add-token", "ada", "--role", "admin", "-o", "json").stdout)[
        "token"
    ]
    resumed = _run("resume", DEPLOYOPS_TOKEN=admin)  # no id: the one running
    assert resumed.returncode == 0, resumed.stderr
    assert "completed" in resumed.stdout
    assert _current_count(root, "api-keys") == 1
    assert json.loads(_run("lock", "list", "-o", "json").stdout) == []
    shown = json.loads(_run("deployments", "show", running["id"], "-o", "json").stdout)
    assert shown["status"] == "succeeded"
    assert [s["status"] for s in shown["steps"]] == ["succeeded"] * 6
    assert "rotation.resumed" in [e["kind"] for e in shown["events"]]
    again = _run("resume", running["id"], DEPLOYOPS_TOKEN=admin)
    assert again.returncode == 0 and "completed" in again.stdout  # ended: shown as it is
