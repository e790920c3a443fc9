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
    # another thread still running is waited for, then the exit handlers run
    assert out.stdout.rstrip().endswith("thread finished\nexit handler ran"), out.stdout
