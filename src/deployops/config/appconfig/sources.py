"""Reading the layers' files: an environment's YAML and a ``.env.local`` (dotenv) file.

Both readers return ``(entries, issues)`` and never raise for bad input: every problem becomes a
:class:`~deployops.errors.ConfigIssue` with a file and a path. No message quotes a line of a
dotenv file, because such a line may hold a secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from deployops.errors import ConfigIssue

__all__ = [
    "Entry",
    "Layer",
    "Source",
    "display_path",
    "parse_dotenv",
    "parse_env_yaml",
    "read_text",
    "yaml_issue",
]

_DOTENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class Layer(StrEnum):
    """Where a value came from, lowest precedence first (CFG-1)."""

    DEFAULT = "default"
    FILE = "file"
    ENV_LOCAL = "env.local"
    PROCESS = "process"


@dataclass(frozen=True, slots=True)
class Source:
    """A layer and the place in it, e.g. ``file`` at ``config/environments/staging.yaml:4``."""

    layer: Layer
    location: str

    def __str__(self) -> str:
        return f"{self.layer.value} ({self.location})"


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``KEY = text`` read from a file, with its line (1-based)."""

    key: str
    text: str | None
    line: int


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_text(path: Path, file: str) -> tuple[str | None, list[ConfigIssue]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [ConfigIssue(path="(file)", message=f"cannot read: {exc.strerror}", file=file)]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        return None, [
            ConfigIssue(
                path=f"byte {exc.start}",
                message="not UTF-8 text; save the file as UTF-8",
                file=file,
            )
        ]


def yaml_issue(exc: Exception, text: str, file: str) -> ConfigIssue:
    """A YAML error as an issue with line and column."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        where = f"line {mark.line + 1}, column {mark.column + 1}"
    elif isinstance(getattr(exc, "position", None), int):
        pos: int = exc.position  # type: ignore[attr-defined]
        line = text.count("\n", 0, pos) + 1
        where = f"line {line}, column {pos - (text.rfind(chr(10), 0, pos) + 1) + 1}"
    else:
        where = "(file)"
    problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or type(exc).__name__
    return ConfigIssue(
        path=where,
        message=f"not valid YAML: {problem}; fix the syntax (quote values with ':' or '#')",
        file=file,
    )


def parse_env_yaml(text: str, file: str) -> tuple[list[Entry], list[ConfigIssue]]:
    """An environment file: a flat mapping ``KEY: value``. Scalars are taken as written (so
    ``0123`` stays ``0123`` and ``yes`` stays ``yes``); the schema gives them a type."""
    issues: list[ConfigIssue] = []
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        return [], [yaml_issue(exc, text, file)]
    if node is None:
        return [], []
    if not isinstance(node, yaml.MappingNode):
        line = node.start_mark.line + 1
        return [], [
            ConfigIssue(
                path="(root)",
                message="an environment file is a mapping of KEY: value, e.g. APP_NAME: shop-api",
                file=f"{file}:{line}",
            )
        ]
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            issues.append(
                ConfigIssue(path="(key)", message="a key must be a name", file=f"{file}:{line}")
            )
            continue
        key = str(key_node.value)
        if key in seen:
            issues.append(
                ConfigIssue(
                    path=key,
                    message=f"duplicate key (first on line {seen[key]}); keep one",
                    file=f"{file}:{line}",
                )
            )
            continue
        seen[key] = line
        if isinstance(value_node, yaml.ScalarNode):
            null = value_node.tag == "tag:yaml.org,2002:null"
            entries.append(Entry(key=key, text=None if null else str(value_node.value), line=line))
        else:
            issues.append(
                ConfigIssue(
                    path=key,
                    message="must be a single value, not a list or mapping; write e.g. KEY: value",
                    file=f"{file}:{line}",
                )
            )
    return entries, issues


def _unquote(raw: str) -> tuple[str | None, str | None]:
    """``(value, None)`` or ``(None, problem)`` for the part after ``=``."""
    value = raw.strip()
    if not value:
        return "", None
    if value[0] in ("'", '"'):
        quote = value[0]
        out: list[str] = []
        i = 1
        while i < len(value):
            ch = value[i]
            if quote == '"' and ch == "\\" and i + 1 < len(value):
                nxt = value[i + 1]
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                i += 2
                continue
            if ch == quote:
                rest = value[i + 1 :].strip()
                if rest and not rest.startswith("#"):
                    return None, "text after the closing quote; put a comment after ' #'"
                return "".join(out), None
            out.append(ch)
            i += 1
        return None, f"the opening {quote} is never closed; close it on the same line"
    # Unquoted: an inline comment starts at " #".
    cut = value.find(" #")
    if cut >= 0:
        value = value[:cut].rstrip()
    return value, None


def parse_dotenv(text: str, file: str) -> tuple[list[Entry], list[ConfigIssue]]:
    """``KEY=VALUE`` lines (``export`` allowed, ``#`` comments, single or double quotes)."""
    entries: list[Entry] = []
    issues: list[ConfigIssue] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export ") :].lstrip()
        key, sep, rest = stripped.partition("=")
        key = key.strip()
        where = f"{file}:{number}"
        if not sep:
            issues.append(
                ConfigIssue(path=f"line {number}", message="expected KEY=VALUE", file=where)
            )
            continue
        if not _DOTENV_KEY.match(key):
            issues.append(
                ConfigIssue(
                    path=f"line {number}",
                    message="a key is letters, digits and '_', not starting with a digit "
                    "(e.g. DB_PASSWORD=...)",
                    file=where,
                )
            )
            continue
        value, problem = _unquote(rest)
        if problem is not None or value is None:
            issues.append(ConfigIssue(path=key, message=problem or "bad value", file=where))
            continue
        if key in seen:
            issues.append(
                ConfigIssue(
                    path=key,
                    message=f"duplicate key (first on line {seen[key]}); keep one",
                    file=where,
                )
            )
            continue
        seen[key] = number
        entries.append(Entry(key=key, text=value, line=number))
    return entries, issues


def as_mapping(entries: list[Entry]) -> dict[str, Any]:
    return {e.key: e.text for e in entries}
