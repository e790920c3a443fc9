"""Fixtures for the secrets and access tests: the console script's ``main()`` in-process."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployops.cli.main import main


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Result]:
    """``main()`` with argv and cwd; exit codes and output as the console script gives them."""
    monkeypatch.delenv("COLUMNS", raising=False)

    def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Result:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["deployops", *args])
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        code: int | str | None = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        finally:
            for k in env or {}:
                monkeypatch.delenv(k, raising=False)
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return Result(int(code or 0), out, err)

    return run


@pytest.fixture
def project(tmp_path: Path, cli: Callable[..., Result]) -> Path:
    folder = tmp_path / "shop-api"
    folder.mkdir()
    assert cli(folder, "init").returncode == 0
    return folder
