"""The secret-store registry: a store is chosen by name from ``deployops.yaml`` and imported
lazily, like every other driver (boto3 only for Secrets Manager, the ``kubernetes`` client only
for Kubernetes Secrets).

``build_secret_store(project, environment, clock=...)`` returns the environment's store wrapped
in a :class:`SecretResolver`, which also understands ``NAME#FIELD``: a field of a JSON secret
(``secret://database-password#username``).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from deployops.errors import ConfigError, NotFoundError, UnsupportedError
from deployops.secret import Secret

if TYPE_CHECKING:
    from deployops.clock import Clock
    from deployops.config.project import ProjectConfig
    from deployops.config.secrets import StoreSettings
    from deployops.ports import RotatingSecretStore, SecretStore

__all__ = [
    "SECRET_STORES",
    "SecretResolver",
    "build_secret_store",
    "key_file_for",
    "rotating_store",
    "store_from_settings",
]

DEVELOPMENT = "development"

# store type -> "module:Class"
SECRET_STORES: Mapping[str, str] = {
    "env.local": "deployops.drivers.local.secrets:DotenvSecretStore",
    "environment": "deployops.drivers.local.secrets:EnvironmentSecretStore",
    "encrypted-file": "deployops.drivers.local.encrypted:EncryptedFileSecretStore",
    "aws-secrets-manager": "deployops.drivers.aws.secretsmanager:SecretsManagerSecretStore",
    "kubernetes": "deployops.drivers.kubernetes_secrets:KubernetesSecretStore",
}


def key_file_for(root: Path, environment: str) -> Path:
    """The default key file of the encrypted store of ``environment``."""
    return root / ".deployops" / "secrets" / f"{environment}.key"


def _store_file_for(root: Path, environment: str) -> Path:
    return root / ".deployops" / "secrets" / f"{environment}.json"


def store_from_settings(
    settings: StoreSettings,
    *,
    root: Path,
    environment: str,
    clock: Clock,
    environ: Mapping[str, str] | None = None,
) -> SecretStore:
    """Build one store from its own settings (the driver never reads ``ProjectConfig``)."""
    kind = settings.type
    if kind not in SECRET_STORES:
        raise ConfigError(
            f"unknown secret store {kind!r}; valid: {', '.join(SECRET_STORES)}",
            path=f"secrets.stores.{environment}.type",
        )
    if kind == "env.local":
        from deployops.drivers.local.secrets import DotenvSecretStore

        # where the application configuration keeps it (config/appconfig: <root>/config)
        return DotenvSecretStore(path=root / "config" / ".env.local", environment=environment)
    if kind == "environment":
        from deployops.drivers.local.secrets import EnvironmentSecretStore

        return EnvironmentSecretStore(environ=environ)
    if kind == "encrypted-file":
        from deployops.drivers.local.encrypted import EncryptedFileSecretStore

        def resolve(p: str, default: Path) -> Path:
            return (root / p) if p and not Path(p).is_absolute() else (Path(p) if p else default)

        return EncryptedFileSecretStore(
            path=resolve(settings.path, _store_file_for(root, environment)),
            key_file=resolve(settings.key_file, key_file_for(root, environment)),
            clock=clock,
        )
    if kind == "aws-secrets-manager":
        try:
            from deployops.drivers.aws.secretsmanager import SecretsManagerSecretStore
        except ModuleNotFoundError:  # pragma: no cover - depends on the installation
            raise _missing(environment, "boto3", "aws") from None
        if importlib.util.find_spec("boto3") is None:
            raise _missing(environment, "boto3", "aws")
        return SecretsManagerSecretStore(
            region=settings.region, endpoint_url=settings.endpoint_url, prefix=settings.prefix
        )
    if importlib.util.find_spec("kubernetes") is None:
        raise _missing(environment, "the kubernetes client", "k8s")
    from deployops.drivers.kubernetes_secrets import KubernetesSecretStore

    return KubernetesSecretStore(
        namespace=settings.namespace, prefix=settings.prefix, host=settings.host, clock=clock
    )


def _missing(environment: str, what: str, extra: str) -> UnsupportedError:
    return UnsupportedError(
        f"the secret store of {environment} needs {what}",
        path=f"secrets.stores.{environment}.type",
        hint=f"pip install 'deployops[{extra}]'",
    )


def build_secret_store(
    project: ProjectConfig,
    environment: str,
    *,
    clock: Clock,
    environ: Mapping[str, str] | None = None,
) -> SecretResolver:
    """The environment's store as configured; without ``secrets.stores.<env>``: ``.env.local``
    then ``DEPLOYOPS_SECRET_*`` in development, ``DEPLOYOPS_SECRET_*`` elsewhere."""
    from deployops.config.secrets import StoreSettings
    from deployops.drivers.local.secrets import ChainSecretStore

    settings = project.secrets.store_for(environment)
    root = project.root
    if settings is None:
        env_store = store_from_settings(
            StoreSettings(type="environment"),
            root=root,
            environment=environment,
            clock=clock,
            environ=environ,
        )
        if environment == DEVELOPMENT:
            dotenv = store_from_settings(
                StoreSettings(type="env.local"), root=root, environment=environment, clock=clock
            )
            return SecretResolver(ChainSecretStore(stores=(dotenv, env_store)))
        return SecretResolver(env_store)
    store = store_from_settings(
        settings, root=root, environment=environment, clock=clock, environ=environ
    )
    return SecretResolver(store)


def rotating_store(store: SecretStore, *, environment: str) -> RotatingSecretStore:
    """``store`` if it can rotate; otherwise the error naming the stores that can."""
    from deployops.ports import RotatingSecretStore

    inner = store.inner if isinstance(store, SecretResolver) else store
    if isinstance(inner, RotatingSecretStore) and "rotate" in inner.capabilities:
        return inner
    raise UnsupportedError(
        f"the secret store of {environment} ({inner.name}) only reads secrets; it cannot "
        "rotate them",
        path=f"secrets.stores.{environment}",
        hint="set secrets.stores."
        f"{environment}.type to encrypted-file, aws-secrets-manager or kubernetes in "
        "deployops.yaml",
    )


class SecretResolver:
    """A store that also resolves ``NAME#FIELD`` to one field of a JSON secret."""

    name: ClassVar[str] = "resolver"
    capabilities: ClassVar[frozenset[str]] = frozenset({"get", "list"})

    def __init__(self, inner: SecretStore) -> None:
        self.inner = inner

    @property
    def store_name(self) -> str:
        return self.inner.name

    def get(self, name: str) -> Secret:
        base, _, field = name.partition("#")
        secret = self.inner.get(base)
        if not field:
            return secret
        try:
            doc = json.loads(secret.reveal())
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or field not in doc:
            raise NotFoundError(
                f"secret {base!r} has no field {field!r}",
                path=name,
                hint=f"reference the whole secret as secret://{base}, or check its kind in "
                "deployops.yaml",
            )
        return Secret(str(doc[field]))

    def list(self) -> Sequence[str]:
        return self.inner.list()
