"""Every fix hint names a command or path that exists: each ``deployops ...`` command quoted
in the sources (hints, help, messages) is resolved in the real command tree, its options are
options that command takes, and ``--help`` of it runs; each ``docs/`` or ``examples/`` path a
message points to is in the project."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from deployops.cli.main import app

ROOT = Path(__file__).resolve().parents[3]
SRC = ROOT / "src" / "deployops"

# `deployops ...` in backticks, or after "e.g." / "(" / "run" in a message.
_QUOTED = re.compile(r"`deployops ([^`]+)`|(?:e\.g\.|\(|run) deployops ([a-z][a-z -]*[a-z])")
_PATH = re.compile(r"\b(?:see|create|in) ((?:docs|examples)/[A-Za-z0-9_./-]*[A-Za-z0-9_/])")


def _quoted_commands() -> dict[str, str]:
    """command text -> the file it was found in."""
    found: dict[str, str] = {}
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for m in _QUOTED.finditer(text):
            cmd = (m.group(1) or m.group(2)).strip()
            for alternative in _alternatives(cmd):
                found.setdefault(alternative, str(path.relative_to(ROOT)))
    return found


def _alternatives(cmd: str) -> list[str]:
    """``deployments list|show`` -> both commands."""
    words = cmd.split()
    out: list[list[str]] = [[]]
    for w in words:
        if "|" in w and not w.startswith("-"):
            out = [[*prefix, alt] for prefix in out for alt in w.split("|")]
        else:
            out = [[*prefix, w] for prefix in out]
    return [" ".join(o) for o in out]


ROOT_COMMAND = typer.main.get_command(app)
GLOBAL_OPTIONS = {o for p in ROOT_COMMAND.params for o in (*p.opts, *p.secondary_opts)}


def _resolve(words: list[str]) -> tuple[Any, list[str], list[str]]:
    """The command the words name, the words that named it, and the options given."""
    command: Any = ROOT_COMMAND
    path: list[str] = []
    options: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w.startswith("-"):
            options.append(w.split("=", 1)[0])
            if w in ("-o", "--output", "-e", "--env", "-c", "--config") and i + 1 < len(words):
                i += 1  # a global option's value
        elif hasattr(command, "get_command") and not options:
            sub = command.get_command(command.context_class(command), w)
            assert sub is not None, f"no command {' '.join([*path, w])!r}"
            command = sub
            path.append(w)
        i += 1
    return command, path, options


COMMANDS = _quoted_commands()


def test_the_sources_quote_commands_at_all() -> None:
    assert len(COMMANDS) > 15
    assert "resume" in {c.split()[0] for c in COMMANDS}


@pytest.mark.parametrize("text", sorted(COMMANDS))
def test_each_quoted_command_exists_and_takes_its_options(text: str) -> None:
    command, path, options = _resolve(text.replace("[", " ").replace("]", " ").split())
    accepted = GLOBAL_OPTIONS | {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    for option in options:
        assert option in accepted, f"{text!r} ({COMMANDS[text]}): {option} is not an option"
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, (text, result.output)


def test_each_docs_or_examples_path_a_message_names_exists() -> None:
    named: set[str] = set()
    for path in SRC.rglob("*.py"):
        named.update(_PATH.findall(path.read_text(encoding="utf-8")))
    assert "docs/configuration.md" in named
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert missing == []
