"""AWS Secrets Manager as a :class:`~deployops.ports.RotatingSecretStore` (SEC-1, SEC-3).

Every read names a ``VersionStage`` (or a ``VersionId``): a read without one may return a
stale value from a cache layer (moto does), and a rotation must say which value it means.
Promotion is ``UpdateSecretVersionStage`` moving ``AWSCURRENT``; Secrets Manager then moves
``AWSPREVIOUS`` to the version that lost ``AWSCURRENT`` itself, the labels
:func:`deployops.domain.secrets.promote_labels` describes.

The client is built here from region and endpoint (a minimal session; a test points the endpoint
at a moto server on a loopback port). Vendor errors become deployops errors at this edge.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from deployops.domain.secrets import SecretInfo, SecretVersion, Stage
from deployops.errors import DriverError, NotFoundError
from deployops.secret import Secret

__all__ = ["SecretsManagerSecretStore", "secretsmanager_client"]

_RETRYABLE = {"ThrottlingException", "InternalServiceError", "RequestTimeout"}


def secretsmanager_client(*, region: str, endpoint_url: str = "") -> Any:
    """A boto3 Secrets Manager client; ``endpoint_url`` for a stand-in (moto) or a VPC endpoint."""
    import boto3
    from botocore.config import Config

    kwargs: dict[str, Any] = {
        "region_name": region,
        "config": Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5),
    }
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return boto3.client("secretsmanager", **kwargs)


class SecretsManagerSecretStore:
    """Secrets named ``{prefix}{name}`` in one region. ``client`` is built lazily (no I/O here)."""

    name: ClassVar[str] = "aws-secrets-manager"
    capabilities: ClassVar[frozenset[str]] = frozenset({"get", "list", "rotate", "versions"})

    def __init__(
        self, *, region: str, endpoint_url: str = "", prefix: str = "", client: Any = None
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.prefix = prefix
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = secretsmanager_client(region=self.region, endpoint_url=self.endpoint_url)
        return self._client

    def _id(self, name: str) -> str:
        return self.prefix + name

    @contextlib.contextmanager
    def _errors(self, operation: str, name: str = "") -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise NotFoundError(
                    f"secret {name!r} is not in Secrets Manager ({self.region})",
                    path=name,
                    hint=f"create it (aws secretsmanager create-secret --name {self._id(name)}) "
                    "or fix the name in deployops.yaml",
                ) from None
            # The message of a ClientError never carries the SecretString; the code suffices.
            raise DriverError(
                self.name, operation, code or "error", retryable=code in _RETRYABLE
            ) from None
        except BotoCoreError as exc:
            raise DriverError(
                self.name,
                operation,
                type(exc).__name__,
                retryable=True,
                hint="check the network path and credentials to Secrets Manager",
            ) from None

    # ------------------------------------------------------------------ SecretStore
    def get(self, name: str) -> Secret:
        return self.get_version(name)

    def list(self) -> Sequence[str]:
        names: builtins.list[str] = []
        with self._errors("list"):
            for page in self.client.get_paginator("list_secrets").paginate():
                for item in page.get("SecretList", []):
                    full = str(item["Name"])
                    if full.startswith(self.prefix):
                        names.append(full.removeprefix(self.prefix))
        return sorted(names)

    def get_version(
        self, name: str, *, stage: Stage = Stage.CURRENT, version_id: str | None = None
    ) -> Secret:
        args: dict[str, str] = {"SecretId": self._id(name)}
        if version_id is not None:
            args["VersionId"] = version_id
        else:
            args["VersionStage"] = stage.value
        with self._errors("get", name):
            resp = self.client.get_secret_value(**args)
        return Secret(str(resp.get("SecretString", "")))

    def describe(self, name: str) -> SecretInfo:
        self._labels(name)  # NotFound from DescribeSecret (moto answers 500 to a listing)
        versions: builtins.list[SecretVersion] = []
        token: str | None = None
        with self._errors("describe", name):
            while True:
                args: dict[str, Any] = {"SecretId": self._id(name), "IncludeDeprecated": False}
                if token:
                    args["NextToken"] = token
                page = self.client.list_secret_version_ids(**args)
                versions.extend(
                    SecretVersion(
                        version_id=str(v["VersionId"]),
                        stages=frozenset(
                            Stage(s) for s in v.get("VersionStages", []) if s in _STAGES
                        ),
                        created_at=v.get("CreatedDate"),
                    )
                    for v in page.get("Versions", [])
                )
                token = page.get("NextToken")
                if not token:
                    break
        return SecretInfo(name=name, versions=tuple(versions))

    def _labels(self, name: str) -> dict[str, builtins.list[str]]:
        with self._errors("describe", name):
            resp = self.client.describe_secret(SecretId=self._id(name))
        return {str(k): list(v) for k, v in resp.get("VersionIdsToStages", {}).items()}

    def put_pending(self, name: str, value: Secret, *, version_id: str) -> None:
        try:
            labels = self._labels(name)
        except NotFoundError:
            with self._errors("create", name):
                self.client.create_secret(Name=self._id(name))
            labels = {}
        if Stage.PENDING.value in labels.get(version_id, []):
            return
        # ClientRequestToken makes a repeat with the same id and value a no-op on AWS.
        with self._errors("put", name):
            self.client.put_secret_value(
                SecretId=self._id(name),
                ClientRequestToken=version_id,
                SecretString=value.reveal(),
                VersionStages=[Stage.PENDING.value],
            )

    def promote(self, name: str, version_id: str) -> None:
        labels = self._labels(name)
        if version_id not in labels:
            raise NotFoundError(f"secret {name!r} has no version {version_id}", path=name)
        current = next((v for v, s in labels.items() if Stage.CURRENT.value in s), None)
        with self._errors("promote", name):
            if current != version_id:
                args: dict[str, str] = {
                    "SecretId": self._id(name),
                    "VersionStage": Stage.CURRENT.value,
                    "MoveToVersionId": version_id,
                }
                if current is not None:
                    args["RemoveFromVersionId"] = current
                self.client.update_secret_version_stage(**args)
            if Stage.PENDING.value in labels[version_id]:
                self.client.update_secret_version_stage(
                    SecretId=self._id(name),
                    VersionStage=Stage.PENDING.value,
                    RemoveFromVersionId=version_id,
                )

    def discard_pending(self, name: str, version_id: str) -> None:
        try:
            labels = self._labels(name)
        except NotFoundError:
            return
        if Stage.PENDING.value not in labels.get(version_id, []):
            return
        with self._errors("discard", name):
            self.client.update_secret_version_stage(
                SecretId=self._id(name),
                VersionStage=Stage.PENDING.value,
                RemoveFromVersionId=version_id,
            )


_STAGES = {s.value for s in Stage}
