"""The console script's quick exit: exit codes, output and exit handlers as a normal exit."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = (
    "import atexit, sys, threading, time\n"
    "from deployops.cli.main import entry\n"
    "atexit.register(lambda: print('exit handler ran', flush=True))\n"
    "def late():\n"
    "    time.sleep(0.2)\n"
    "    print('thread finished', flush=True)\n"
    "threading.Thread(target=late).start()\n"
    "sys.argv = ['deployops', *sys.argv[1:]]\n"
    "entry()\n"
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "code", "stdout", "stderr"),
    [
        (("--version",), 0, "deployops ", ""),
        (("no-such-command",), 2, "", "No such command"),
        (("-c", "/nonexistent/deployops.yaml", "deployments", "list"), 2, "", "does not exist"),
    ],
)
def test_quick_exit_keeps_codes_output_threads_and_exit_handlers(
    args: tuple[str, ...], code: int, stdout: str, stderr: str
) -> None:
    out = _run(*args)
    assert out.returncode == code, out
    assert stdout in out.stdout and stderr in out.stderr, out
    # another thread still running is waited for, then the exit handlers run (the thread may
    # finish before or after the command's own output on a loaded machine)
    lines = out.stdout.splitlines()
    assert lines[-1] == "exit handler ran", out.stdout
    assert lines.count("thread finished") == 1, out.stdout


@pytest.mark.parametrize(
    ("args", "heavy"),
    [
        (("--help",), ("sqlalchemy", "pydantic", "httpx", "yaml", "psutil", "alembic")),
        # a command's help: Typer itself loads pydantic for its parameter types
        (("deploy", "--help"), ("sqlalchemy", "httpx", "yaml", "psutil", "alembic")),
        (("rollback", "--help"), ("sqlalchemy", "httpx", "yaml", "psutil", "alembic")),
    ],
)
def test_help_stays_lazy(args: tuple[str, ...], heavy: tuple[str, ...]) -> None:
    """`--help` answers without loading the store, the config models or the HTTP clients
    (they make a command's start-up slow; BENCHMARKS.md, "Start-up")."""
    probe = (
        "import sys\n"
        "from deployops.cli.main import main\n"
        f"sys.argv = ['deployops', *{list(args)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = {heavy!r}\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-500:] + out.stderr[-500:]
