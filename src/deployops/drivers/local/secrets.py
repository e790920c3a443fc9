"""Fetch-only :class:`~deployops.ports.SecretStore` drivers for ``secret://NAME`` references.

* :class:`DotenvSecretStore` reads ``.env.local``; SEC-1 allows it in development only, so it
  refuses to serve any other environment.
* :class:`EnvironmentSecretStore` reads ``DEPLOYOPS_SECRET_<NAME>`` from the process environment
  (``database-password`` → ``DEPLOYOPS_SECRET_DATABASE_PASSWORD``), e.g. injected by CI.
* :class:`ChainSecretStore` asks several stores in order.

>>> store = EnvironmentSecretStore(environ={"DEPLOYOPS_SECRET_DATABASE_PASSWORD": "pw"})
>>> store.get("database-password")
Secret('[REDACTED]')
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from deployops.errors import ConfigError, NotFoundError, UnsupportedError
from deployops.ports import SecretStore
from deployops.secret import Secret

__all__ = [
    "ChainSecretStore",
    "DotenvSecretStore",
    "EnvironmentSecretStore",
    "env_key",
]

DEVELOPMENT = "development"


def env_key(name: str) -> str:
    """A secret name as a variable name: ``database-password`` → ``DATABASE_PASSWORD``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()


class DotenvSecretStore:
    """Secrets in a ``.env.local`` file, looked up by exact name or by :func:`env_key`.

    Development only (SEC-1): built for another environment, every call raises
    :class:`~deployops.errors.UnsupportedError`. The file is read on each call (no I/O in
    ``__init__``); lines the loader reports as bad are skipped here.
    """

    name: ClassVar[str] = "env.local"
    capabilities: ClassVar[frozenset[str]] = frozenset({"get", "list"})

    def __init__(self, *, path: Path, environment: str = DEVELOPMENT) -> None:
        self.path = path
        self.environment = environment

    def _values(self) -> dict[str, str]:
        if self.environment != DEVELOPMENT:
            raise UnsupportedError(
                f".env.local is a secret store for development only, not {self.environment}",
                path="secrets",
                hint="keep staging and production secrets in the secret store (e.g. AWS Secrets "
                "Manager) or in DEPLOYOPS_SECRET_<NAME> variables",
            )
        from deployops.config.appconfig.sources import parse_dotenv, read_text

        if not self.path.is_file():
            return {}
        text, _ = read_text(self.path, str(self.path))
        if text is None:
            return {}
        entries, _ = parse_dotenv(text, str(self.path))
        return {e.key: e.text or "" for e in entries}

    def get(self, name: str) -> Secret:
        values = self._values()
        for candidate in (name, env_key(name)):
            if candidate in values:
                return Secret(values[candidate])
        raise NotFoundError(
            f"secret {name!r} is not in {self.path.name}",
            path=name,
            hint=f"add a line {env_key(name)}=... to {self.path}",
        )

    def list(self) -> Sequence[str]:
        return sorted(self._values())


class EnvironmentSecretStore:
    """Secrets in process environment variables ``<prefix><NAME>``."""

    name: ClassVar[str] = "environment"
    capabilities: ClassVar[frozenset[str]] = frozenset({"get", "list"})

    def __init__(
        self, *, environ: Mapping[str, str] | None = None, prefix: str = "DEPLOYOPS_SECRET_"
    ) -> None:
        self._environ = environ
        self.prefix = prefix

    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def get(self, name: str) -> Secret:
        var = self.prefix + env_key(name)
        value = self._env().get(var)
        if value is None:
            raise NotFoundError(
                f"secret {name!r} is not set (looked for ${var})",
                path=name,
                hint=f"export {var}=... or store it in the environment's secret store",
            )
        return Secret(value)

    def list(self) -> Sequence[str]:
        return sorted(k.removeprefix(self.prefix) for k in self._env() if k.startswith(self.prefix))


class ChainSecretStore:
    """Ask ``stores`` in order; the first that has the secret wins."""

    name: ClassVar[str] = "chain"
    capabilities: ClassVar[frozenset[str]] = frozenset({"get", "list"})

    def __init__(self, *, stores: Sequence[SecretStore]) -> None:
        self.stores = tuple(stores)

    def get(self, name: str) -> Secret:
        looked: list[str] = []
        for store in self.stores:
            try:
                return store.get(name)
            except NotFoundError:
                looked.append(store.name)
            except ConfigError:
                # e.g. .env.local asked outside development: not a source here, keep looking.
                continue
        raise NotFoundError(
            f"secret {name!r} was not found (looked in: {', '.join(looked) or 'no store'})",
            path=name,
            hint="add it to one of those stores, or fix the name after secret://",
        )

    def list(self) -> Sequence[str]:
        names: set[str] = set()
        for store in self.stores:
            try:
                names.update(store.list())
            except ConfigError:
                continue
        return sorted(names)
