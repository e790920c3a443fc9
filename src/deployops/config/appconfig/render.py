"""Render resolved settings for people and platforms, and compare two environments.

Nothing here prints a secret: sensitive values render as ``[REDACTED]``; the ECS form names a
secret by reference (``valueFrom``), as a task definition expects, never by value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from deployops.config.appconfig.loader import SECRET_PREFIX, ResolvedConfig, ResolvedValue
from deployops.secret import REDACTED

__all__ = [
    "FORMATS",
    "DiffEntry",
    "diff",
    "render",
    "render_dotenv",
    "render_ecs",
    "render_json",
]

FORMATS = ("dotenv", "json", "ecs")
_PLAIN = re.compile(r"^[A-Za-z0-9_./:@+,=-]*$")


def _dotenv_value(text: str) -> str:
    if text == REDACTED or (text and _PLAIN.match(text)):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def render_dotenv(config: ResolvedConfig) -> str:
    """``KEY=value`` lines, sorted; secrets as ``[REDACTED]``."""
    lines = [
        f"{key}={_dotenv_value(config.values[key].display())}" for key in sorted(config.values)
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def render_json(config: ResolvedConfig) -> str:
    """One JSON object ``{KEY: value}``; secrets as ``[REDACTED]``."""
    data = {key: config.values[key].display() for key in sorted(config.values)}
    return json.dumps(data, indent=2) + "\n"


def render_ecs(config: ResolvedConfig) -> str:
    """The ``environment`` and ``secrets`` entries of an ECS container definition.

    A secret is ``{"name": KEY, "valueFrom": NAME}`` for ``secret://NAME``. A development-only
    literal secret has no reference to give, so it appears redacted in ``environment``.
    """
    environment: list[dict[str, str]] = [
        {"name": key, "value": value} for key, value in sorted(config.environment.items())
    ]
    environment += [{"name": key, "value": REDACTED} for key in sorted(config.literal_secrets)]
    environment.sort(key=lambda item: item["name"])
    secrets = [
        {"name": key, "valueFrom": ref.removeprefix(SECRET_PREFIX)}
        for key, ref in sorted(config.secrets.items())
    ]
    doc: dict[str, Any] = {"environment": environment, "secrets": secrets}
    return json.dumps(doc, indent=2) + "\n"


def render(config: ResolvedConfig, fmt: str) -> str:
    if fmt == "dotenv":
        return render_dotenv(config)
    if fmt == "json":
        return render_json(config)
    if fmt == "ecs":
        return render_ecs(config)
    raise ValueError(f"unknown format {fmt!r}")


@dataclass(frozen=True, slots=True)
class DiffEntry:
    """``kind`` is ``only_a``, ``only_b`` or ``differs``; values are display forms."""

    key: str
    kind: str
    a: str | None
    b: str | None


def _shown(value: ResolvedValue) -> str:
    # A reference names where the secret lives, not what it is, so it is safe to compare openly.
    return value.reference if value.reference is not None else value.display()


def diff(a: ResolvedConfig, b: ResolvedConfig) -> list[DiffEntry]:
    """Keys set on one side only, and keys whose values differ, sorted by key."""
    out: list[DiffEntry] = []
    for key in sorted(set(a.values) | set(b.values)):
        va, vb = a.values.get(key), b.values.get(key)
        if vb is None and va is not None:
            out.append(DiffEntry(key=key, kind="only_a", a=_shown(va), b=None))
        elif va is None and vb is not None:
            out.append(DiffEntry(key=key, kind="only_b", a=None, b=_shown(vb)))
        elif va is not None and vb is not None and not va.same_as(vb):
            out.append(DiffEntry(key=key, kind="differs", a=_shown(va), b=_shown(vb)))
    return out
