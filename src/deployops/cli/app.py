"""The object every command receives: config, environment, console, lazily built services."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from deployops.config.project import ProjectConfig
    from deployops.store import StateStore

__all__ = ["App"]


def _console(*, stderr: bool) -> Console:
    # Without a terminal Rich assumes 80 columns and shortens cells with an ellipsis; piped
    # output (grep, CI logs) must keep whole deployment ids, so it gets a wide page instead.
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and not os.environ.get("COLUMNS")
    return Console(stderr=stderr, highlight=False, width=200 if wide else None)


@dataclass
class App:
    config_path: Path | None = None
    env: str | None = None
    output: str = "text"
    verbose: int = 0
    quiet: bool = False
    console: Console = field(default_factory=lambda: _console(stderr=False))
    err: Console = field(default_factory=lambda: _console(stderr=True))
    # the caller, once a mutating command passed the role check (cli/access.py)
    identity: Any = None

    @property
    def json(self) -> bool:
        return self.output == "json"

    @cached_property
    def project(self) -> ProjectConfig:
        from deployops.config.project import load_project

        return load_project(self.config_path)

    @cached_property
    def store(self) -> StateStore:
        from deployops.store import StateStore

        return StateStore.open(
            self.project.state_url(), reconnect_s=float(self.project.state.reconnect)
        )

    def environment_name(self) -> str:
        """``-e`` or, when the project has exactly one environment, that one."""
        from deployops.errors import ConfigError

        if self.env:
            self.project.environment(self.env)  # validates the name
            return self.env
        names = list(self.project.environments)
        if len(names) == 1:
            return names[0]
        raise ConfigError(
            "which environment? this project has " + ", ".join(names),
            path="--env",
            hint="pass -e/--env NAME (e.g. -e staging)",
        )

    def service_name(self, given: str | None) -> str:
        from deployops.errors import ConfigError

        if given:
            self.project.service(given)
            return given
        only = self.project.default_service()
        if only:
            return only
        raise ConfigError(
            "which service? this project has " + ", ".join(self.project.services),
            path="--service",
            hint="pass --service NAME",
        )

    # ---------------------------------------------------------------- output
    def emit(self, data: Any) -> None:
        """One JSON document on stdout (``-o json``)."""
        sys.stdout.write(json.dumps(data, default=str) + "\n")
        sys.stdout.flush()

    def info(self, message: str) -> None:
        """Progress for people: stderr, so stdout stays clean for pipelines."""
        if not self.quiet:
            self.err.print(message)
