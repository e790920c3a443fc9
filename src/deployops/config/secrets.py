"""The ``secrets:`` section of ``deployops.yaml``: which store each environment uses and the
managed secrets with their kind and rotation period (SEC-1, SEC-2, SEC-3).

The guide's periods are the defaults: the database password every 90 days, API keys every 180,
the JWT signing key every 365 (encryption keys yearly too). Without a ``secrets:`` section the
four managed secrets exist with those periods, development reads ``.env.local`` then
``DEPLOYOPS_SECRET_*`` variables, and other environments read the variables.

.. code-block:: yaml

    secrets:
      stores:
        staging: {type: encrypted-file}            # .deployops/secrets/staging.{json,key}
        production: {type: aws-secrets-manager, region: ap-northeast-1, prefix: shop/}
      managed:
        database-password:
          rotation: 90d
          database: {dsn: "postgresql://postgres@127.0.0.1:5432/app", users: [app_a, app_b]}
        jwt-secret: {rotation: 365d, token_lifetime: 1h}
        encryption-keys: {keep_versions: 5}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from deployops.config.durations import Duration
from deployops.domain.secrets import DEFAULT_PERIOD_DAYS, ManagedSecret, SecretKind

__all__ = [
    "STORE_TYPES",
    "DatabaseTarget",
    "ManagedSecretConfig",
    "SecretsConfig",
    "StoreSettings",
    "secrets_issues",
]

StoreType = Literal[
    "env.local", "environment", "encrypted-file", "aws-secrets-manager", "kubernetes"
]
STORE_TYPES: tuple[str, ...] = (
    "env.local",
    "environment",
    "encrypted-file",
    "aws-secrets-manager",
    "kubernetes",
)
DAY = 86400.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Model):
    """One environment's secret store; each type reads only its own fields."""

    type: StoreType
    # encrypted-file (defaults: .deployops/secrets/<env>.json and <env>.key)
    path: str = ""
    key_file: str = ""
    # aws-secrets-manager
    region: str = "ap-northeast-1"
    endpoint_url: str = ""
    # aws-secrets-manager and kubernetes: names are prefix + secret name
    prefix: str = ""
    # kubernetes (empty host: the kubeconfig)
    namespace: str = "default"
    host: str = ""


class DatabaseTarget(_Model):
    """Where the database password is applied: a DSN with rights to ``ALTER ROLE`` (no password
    in the file: trust/peer auth or PGPASSFILE) and the two login roles rotations alternate
    between, so the old password keeps working until every replica has moved."""

    dsn: str
    users: tuple[str, str] = ("app_a", "app_b")
    # the DSN applications use, without user and password (default: the admin DSN's host,
    # port and database)
    app_dsn: str = ""


class ManagedSecretConfig(_Model):
    kind: SecretKind | None = None  # default: the secret's name when it names a kind
    rotation: Duration | None = None  # default: the guide's period for the kind
    database: DatabaseTarget | None = None  # database-password
    token_lifetime: Duration = 3600.0  # jwt-secret: the previous key verifies this long
    keep_versions: int = Field(default=5, ge=1, le=100)  # encryption-keys: old keys kept


class SecretsConfig(_Model):
    stores: dict[str, StoreSettings] = Field(default_factory=dict)
    managed: dict[str, ManagedSecretConfig] = Field(
        default_factory=lambda: {k.value: ManagedSecretConfig() for k in SecretKind}
    )

    def store_for(self, environment: str) -> StoreSettings | None:
        return self.stores.get(environment)

    def managed_secrets(self) -> list[ManagedSecret]:
        out: list[ManagedSecret] = []
        for name, cfg in self.managed.items():
            kind = cfg.kind or SecretKind(name)
            period = cfg.rotation / DAY if cfg.rotation is not None else DEFAULT_PERIOD_DAYS[kind]
            out.append(ManagedSecret(name=name, kind=kind, period_days=period))
        return out

    def managed_secret(self, name: str) -> tuple[ManagedSecret, ManagedSecretConfig] | None:
        for secret in self.managed_secrets():
            if secret.name == name:
                return secret, self.managed[name]
        return None


def secrets_issues(cfg: SecretsConfig, environments: Mapping[str, str]) -> list[tuple[str, str]]:
    """Cross-field problems as ``(path, message)``; ``environments`` maps name -> platform."""
    out: list[tuple[str, str]] = []
    kinds = {k.value for k in SecretKind}
    for env, store in cfg.stores.items():
        where = f"secrets.stores.{env}"
        if env not in environments:
            out.append((where, f"no environment {env!r}; define it under environments"))
        if store.type == "env.local" and env != "development":
            out.append(
                (
                    f"{where}.type",
                    f".env.local is for development only, not {env}; use encrypted-file on the "
                    "local platform or aws-secrets-manager / kubernetes",
                )
            )
    for name, m in cfg.managed.items():
        where = f"secrets.managed.{name}"
        if m.kind is None and name not in kinds:
            out.append((f"{where}.kind", f"set kind to one of {', '.join(sorted(kinds))}"))
        if m.rotation is not None and m.rotation < 60:
            out.append((f"{where}.rotation", "a rotation period is at least a minute (e.g. 90d)"))
        if m.database is not None and m.database.users[0] == m.database.users[1]:
            out.append((f"{where}.database.users", "name two different roles to alternate"))
    return out
