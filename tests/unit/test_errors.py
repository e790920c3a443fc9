"""The one error tree and the exit codes the CLI turns it into: 0 ok, 1 failed, 2 bad config or
usage, 3 rolled back, 4 lock held (DEP-7: stop at the first failure and say why). Tracebacks only
with ``-v``; secrets never appear in a message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deployops.errors import (
    EXIT_FAILED,
    EXIT_LOCK_HELD,
    EXIT_ROLLED_BACK,
    EXIT_USAGE,
    BackupError,
    ConfigError,
    ConfigIssue,
    DeploymentError,
    DeployopsError,
    DriverError,
    LockHeldError,
    NotFoundError,
    PlatformUnavailableError,
    RollbackError,
    RolledBackError,
    RotationError,
    TimeoutError_,
    UnsupportedError,
)
from deployops.secret import Secret

VENV_BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (DeploymentError, EXIT_FAILED),
        (RollbackError, EXIT_FAILED),
        (BackupError, EXIT_FAILED),
        (RotationError, EXIT_FAILED),
        (RolledBackError, EXIT_ROLLED_BACK),
        (ConfigError, EXIT_USAGE),
        (NotFoundError, EXIT_USAGE),
        (UnsupportedError, EXIT_USAGE),
        (PlatformUnavailableError, EXIT_USAGE),
    ],
)
def test_every_error_is_a_deployops_error_with_its_exit_code(
    cls: type[DeployopsError], code: int
) -> None:
    err = cls("something went wrong", hint="do the fix")
    assert isinstance(err, DeployopsError)
    assert err.exit_code == code
    assert str(err) == "something went wrong\n  fix: do the fix"


def test_message_with_hint_names_problem_and_fix() -> None:
    err = DeploymentError("step WaitHealthy failed: 2 of 4 replicas unhealthy", hint="see logs")
    assert str(err) == "step WaitHealthy failed: 2 of 4 replicas unhealthy\n  fix: see logs"
    assert str(DeploymentError("bare")) == "bare"


def test_config_error_collects_every_issue_with_its_path() -> None:
    err = ConfigError(
        [
            ConfigIssue(path="services.web.port", message="must be <= 65535", file="d.yaml"),
            ConfigIssue(path="environments.prod", message="unknown key 'platfrom'"),
        ]
    )
    assert err.exit_code == EXIT_USAGE
    assert len(err.issues) == 2
    assert err.path == "services.web.port"
    assert str(err) == (
        "d.yaml:services.web.port: must be <= 65535\nenvironments.prod: unknown key 'platfrom'"
    )
    single = ConfigError("no such thing", path="--env", hint="pass -e")
    assert str(single) == "--env: no such thing\n  fix: pass -e"


def test_driver_and_timeout_errors_say_which_driver_and_operation() -> None:
    err = DriverError("haproxy", "set map", "socket closed", retryable=True)
    assert str(err) == "haproxy: set map failed: socket closed"
    assert (err.driver, err.operation, err.retryable) == ("haproxy", "set map", True)
    slow = TimeoutError_("ecs", "wait healthy", 60.0, hint="raise health_timeout")
    assert isinstance(slow, DriverError)
    assert slow.retryable
    assert str(slow) == "ecs: wait healthy failed: not done after 60s\n  fix: raise health_timeout"


def test_lock_held_names_owner_reason_age_and_the_way_out() -> None:
    err = LockHeldError("production/web", "alice@ci", "deploy 1.4.0", "2026-11-29T17:45:01", 75.4)
    assert err.exit_code == EXIT_LOCK_HELD
    text = str(err)
    assert "alice@ci" in text
    assert "deploy 1.4.0" in text
    assert "75s ago" in text
    assert "deployops lock release production/web --force" in text


def test_secret_in_an_error_message_is_redacted() -> None:
    password = Secret("hunter2")
    err = DriverError("postgres", "connect", f"login as deployer/{password} refused")
    assert "hunter2" not in str(err)
    assert "[REDACTED]" in str(err)
    assert "hunter2" not in repr(password)
    assert password.reveal() == "hunter2"


# ---------------------------------------------------------------- through the real CLI process
_RAISER = """
import sys
from deployops.cli.main import app, main
from deployops import errors
from deployops.secret import Secret

@app.command("boom")
def boom(kind: str) -> None:
    if kind == "ok":
        print("done")
        return
    if kind == "config":
        raise errors.ConfigError([
            errors.ConfigIssue(path="services.web.port", message="must be <= 65535", file="d.yaml"),
            errors.ConfigIssue(path="environments.prod.platfrom", message="unknown key"),
        ])
    if kind == "lock":
        raise errors.LockHeldError("production/web", "alice@ci", "deploy 1.4.0",
                                   "2026-11-29T17:45:01", 75.0)
    if kind == "rolled_back":
        raise errors.RolledBackError("error rate 7.9% > 5% for 5m: rolled back to 1.3.2",
                                     hint="see deployops deployments show")
    if kind == "failed":
        raise errors.DeploymentError("WaitHealthy: 2 of 4 replicas unhealthy after 60s",
                                     hint="look at the replica logs")
    if kind == "secret":
        raise errors.DriverError("postgres", "connect", f"password {Secret('hunter2')} refused")
    raise RuntimeError("a bug")

sys.argv = ["deployops", *sys.argv[1:]]
main()
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _RAISER, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("kind", "code", "first_line"),
    [
        ("failed", 1, "error: WaitHealthy: 2 of 4 replicas unhealthy after 60s"),
        ("config", 2, "error: 2 problems:"),
        # a rollback that worked is an outcome, not an error
        ("rolled_back", 3, "error rate 7.9% > 5% for 5m: rolled back to 1.3.2"),
        ("lock", 4, "error: lock 'production/web' is held by alice@ci"),
        ("bug", 1, "error: internal error: RuntimeError: a bug"),
    ],
)
def test_cli_maps_each_error_to_its_exit_code_without_traceback(
    kind: str, code: int, first_line: str
) -> None:
    proc = _run("boom", kind)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.splitlines()[0].startswith(first_line)
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("kind", "code", "exit_code"),
    [
        ("failed", "deployment_failed", 1),
        ("config", "bad_config", 2),
        ("rolled_back", "rolled_back", 3),
        ("lock", "lock_held", 4),
        ("bug", "internal_error", 1),
    ],
)
@pytest.mark.parametrize("where", ["before", "after"])
def test_every_failure_with_json_output_is_one_json_object_on_stdout(
    kind: str, code: str, exit_code: int, where: str
) -> None:
    """`-o json` callers parse stdout: a failure is an object with code, message, fix, path."""
    args = ("-o", "json", "boom", kind) if where == "before" else ("boom", kind, "-o", "json")
    proc = _run(*args)
    assert proc.returncode == exit_code
    (line,) = proc.stdout.splitlines()
    body = json.loads(line)
    assert body["ok"] is False
    assert (body["code"], body["exit_code"]) == (code, exit_code)
    assert body["message"]
    assert {"fix", "path"} <= set(body)
    if kind == "config":
        assert body["path"] == "services.web.port"
        assert [i["path"] for i in body["issues"]] == [
            "services.web.port",
            "environments.prod.platfrom",
        ]
    if kind == "lock":
        assert body["lock"]["key"] == "production/web"
        assert body["fix"].startswith("wait for it to finish")


def test_cli_success_is_exit_zero() -> None:
    proc = _run("boom", "ok")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "done\n", "")


def test_cli_lists_every_config_problem_in_one_run() -> None:
    lines = _run("boom", "config").stderr.splitlines()
    assert lines == [
        "error: 2 problems:",
        "  d.yaml:services.web.port: must be <= 65535",
        "  environments.prod.platfrom: unknown key",
    ]


def test_traceback_only_with_verbose() -> None:
    quiet = _run("boom", "failed")
    loud = _run("-v", "boom", "failed")
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr
    assert loud.returncode == 1
    assert "DeploymentError" in loud.stderr
    very = _run("-vvv", "boom", "bug")
    assert "Traceback" in very.stderr


def test_cli_never_prints_a_secret_value() -> None:
    proc = _run("-v", "boom", "secret")
    assert proc.returncode == 1
    assert "hunter2" not in proc.stderr + proc.stdout
    assert "[REDACTED]" in proc.stderr


def test_usage_errors_exit_2() -> None:
    unknown = subprocess.run(
        [str(VENV_BIN / "deployops"), "--no-such-flag"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unknown.returncode == 2
    bad_output = subprocess.run(
        [str(VENV_BIN / "deployops"), "-o", "yaml", "deployments", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad_output.returncode == 2
    assert "use text or json" in bad_output.stderr


def test_config_error_without_a_path_is_just_the_message() -> None:
    assert str(ConfigError("breaking a lock needs --force")) == "breaking a lock needs --force"


@pytest.mark.parametrize(
    ("args", "fix"),
    [
        (("deploy", "-e", "staging"), "`deployops deploy --help` shows the options"),
        (("no-such-command",), "`deployops --help` shows the commands"),
        (("lock", "list", "--bogus"), "`deployops lock list --help` shows the options"),
    ],
)
def test_a_usage_error_with_json_output_is_a_json_object_too(
    tmp_path: Path, args: tuple[str, ...], fix: str
) -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "deployops"), "-o", "json", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    body = json.loads(proc.stdout)
    assert (body["ok"], body["code"], body["exit_code"], body["fix"]) == (False, "usage", 2, fix)
    assert body["message"]
