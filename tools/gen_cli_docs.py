"""Writes docs/cli.md from the CLI itself, so the reference always matches the code.

.venv/bin/python tools/gen_cli_docs.py          # rewrite docs/cli.md
.venv/bin/python tools/gen_cli_docs.py --check  # exit 1 if docs/cli.md is stale
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

from deployops.cli.main import app

OUT = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def _walk(cmd: Any, path: list[str], parent: Any) -> list[str]:
    # Typer ships its own copy of click: reach its Context class through the command.
    ctx = cmd.make_context(path[-1], [], parent=parent, resilient_parsing=True)
    ctx.terminal_width = 100
    out = [f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`", "", "```text"]
    out += [line.rstrip() for line in cmd.get_help(ctx).splitlines()]
    out += ["```", ""]
    if hasattr(cmd, "list_commands"):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                out += _walk(sub, [*path, name], ctx)
    return out


def render() -> str:
    os.environ["COLUMNS"] = "100"
    os.environ["TERM"] = "dumb"
    root = typer.main.get_command(app)
    lines = [
        "# CLI reference",
        "",
        "Generated from the CLI by `tools/gen_cli_docs.py`; a test keeps it current.",
        "Global options (`-c`, `-e`, `-o json`, `-v`, `-q`) go before the command.",
        "",
        *_walk(root, ["deployops"], None),
    ]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    text = render()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != text:
            sys.exit("docs/cli.md is stale: run .venv/bin/python tools/gen_cli_docs.py")
        return
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
