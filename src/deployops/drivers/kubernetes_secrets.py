"""Kubernetes Secrets as a :class:`~deployops.ports.RotatingSecretStore` (SEC-1), through the
official ``kubernetes`` client.

One Kubernetes Secret per managed secret, named ``{prefix}{name}`` in ``namespace``:

- ``data.value``: the current value, what pods read (``secretKeyRef: {key: value}``);
- ``data.v-<version>``: each labelled version (current, pending, previous), so a rotation can
  be put back and a previous key still verifies;
- annotation ``deployops.io/stages``: ``{"<version>": ["AWSCURRENT"], ...}`` and
  ``deployops.io/created``: ``{"<version>": "<ISO time>"}``.

Every write is a replace carrying the ``resourceVersion`` it read, so two writers never lose
each other's change (a 409 is retried from a fresh read). Versions that lose every label are
pruned: Kubernetes Secrets are limited to 1 MiB.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, ClassVar

from deployops.clock import Clock, SystemClock
from deployops.domain.secrets import SecretInfo, SecretVersion, Stage, promote_labels
from deployops.errors import DriverError, NotFoundError
from deployops.secret import Secret

__all__ = ["KubernetesSecretStore"]

STAGES_ANNOTATION = "deployops.io/stages"
CREATED_ANNOTATION = "deployops.io/created"
MANAGED_LABEL = ("app.kubernetes.io/managed-by", "deployops")
_VALUE_KEY = "value"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()


class KubernetesSecretStore:
    """Secrets in one namespace. ``api`` is a ``CoreV1Api``; built lazily from ``host`` (and
    ``token``) or the kubeconfig when not given, so construction does no I/O."""

    name: ClassVar[str] = "kubernetes"
    capabilities: ClassVar[frozenset[str]] = frozenset({"get", "list", "rotate", "versions"})

    def __init__(
        self,
        *,
        namespace: str = "default",
        prefix: str = "",
        host: str = "",
        token: Secret | None = None,
        verify_tls: bool = True,
        api: Any = None,
        clock: Clock | None = None,
    ) -> None:
        self.namespace = namespace
        self.prefix = prefix
        self.host = host
        self.token = token
        self.verify_tls = verify_tls
        self._api = api
        self.clock = clock or SystemClock()

    @property
    def api(self) -> Any:
        if self._api is None:
            from kubernetes import client, config

            if self.host:
                cfg = client.Configuration()
                cfg.host = self.host
                cfg.verify_ssl = self.verify_tls
                if self.token is not None:
                    cfg.api_key = {"authorization": self.token.reveal()}
                    cfg.api_key_prefix = {"authorization": "Bearer"}
                self._api = client.CoreV1Api(client.ApiClient(cfg))
            else:
                config.load_kube_config()
                self._api = client.CoreV1Api()
        return self._api

    def _id(self, name: str) -> str:
        return self.prefix + name

    def _call(self, operation: str, name: str, fn: Callable[[], Any]) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn()
        except ApiException as exc:
            if exc.status == 404:
                raise NotFoundError(
                    f"secret {name!r} is not in Kubernetes namespace {self.namespace}",
                    path=name,
                    hint=f"kubectl -n {self.namespace} get secrets; or fix the name in "
                    "deployops.yaml",
                ) from None
            # The body of an error can echo the object sent: only the status leaves here.
            raise DriverError(
                self.name,
                operation,
                f"HTTP {exc.status} {exc.reason}",
                retryable=exc.status in (409, 429, 500, 502, 503, 504),
            ) from None
        except HTTPError as exc:
            raise DriverError(
                self.name,
                operation,
                f"API server unreachable ({type(exc).__name__})",
                retryable=True,
                hint="check the API server address and that it is up",
            ) from None

    def _read(self, name: str) -> Any:
        return self._call(
            "read", name, lambda: self.api.read_namespaced_secret(self._id(name), self.namespace)
        )

    @staticmethod
    def _stages(obj: Any) -> dict[str, frozenset[Stage]]:
        ann = (obj.metadata.annotations or {}).get(STAGES_ANNOTATION, "{}")
        return {str(k): frozenset(Stage(s) for s in v) for k, v in json.loads(ann).items()}

    # ------------------------------------------------------------------ SecretStore
    def get(self, name: str) -> Secret:
        return self.get_version(name)

    def list(self) -> Sequence[str]:
        selector = f"{MANAGED_LABEL[0]}={MANAGED_LABEL[1]}"
        resp = self._call(
            "list",
            "",
            lambda: self.api.list_namespaced_secret(self.namespace, label_selector=selector),
        )
        return sorted(
            item.metadata.name.removeprefix(self.prefix)
            for item in resp.items
            if item.metadata.name.startswith(self.prefix)
        )

    def get_version(
        self, name: str, *, stage: Stage = Stage.CURRENT, version_id: str | None = None
    ) -> Secret:
        obj = self._read(name)
        if version_id is None:
            version_id = next((v for v, s in self._stages(obj).items() if stage in s), None)
        data = obj.data or {}
        key = f"v-{version_id}"
        if version_id is None or key not in data:
            raise NotFoundError(
                f"secret {name!r} has no version {version_id or stage.value}",
                path=name,
                hint=f"`deployops secrets status` shows the versions of {name}",
            )
        return Secret(_unb64(data[key]))

    def describe(self, name: str) -> SecretInfo:
        from datetime import datetime

        obj = self._read(name)
        created = json.loads((obj.metadata.annotations or {}).get(CREATED_ANNOTATION, "{}"))
        return SecretInfo(
            name=name,
            versions=tuple(
                SecretVersion(
                    version_id=v,
                    stages=s,
                    created_at=datetime.fromisoformat(created[v]) if v in created else None,
                )
                for v, s in self._stages(obj).items()
            ),
        )

    def _write(
        self,
        operation: str,
        name: str,
        change: Callable[[dict[str, str], dict[str, frozenset[Stage]], dict[str, str]], bool],
    ) -> None:
        """Read, apply ``change(data, stages, created)`` (False: nothing to do), replace with the
        read ``resourceVersion``; a conflict (409) starts again from a fresh read."""
        from kubernetes import client

        for _attempt in range(5):
            try:
                obj = self._read(name)
            except NotFoundError:
                obj = None
            if obj is None:
                data: dict[str, str] = {}
                stages: dict[str, frozenset[Stage]] = {}
                created: dict[str, str] = {}
            else:
                data = dict(obj.data or {})
                stages = self._stages(obj)
                created = json.loads((obj.metadata.annotations or {}).get(CREATED_ANNOTATION, "{}"))
            if not change(data, stages, created):
                return
            for vid in [v for v, s in stages.items() if not s]:
                del stages[vid]
                data.pop(f"v-{vid}", None)
                created.pop(vid, None)
            current = next((v for v, s in stages.items() if Stage.CURRENT in s), None)
            if current is not None:
                data[_VALUE_KEY] = data[f"v-{current}"]
            annotations = {
                STAGES_ANNOTATION: json.dumps(
                    {v: sorted(x.value for x in s) for v, s in stages.items()}, sort_keys=True
                ),
                CREATED_ANNOTATION: json.dumps(created, sort_keys=True),
            }
            body = client.V1Secret(
                metadata=client.V1ObjectMeta(
                    name=self._id(name),
                    namespace=self.namespace,
                    labels={MANAGED_LABEL[0]: MANAGED_LABEL[1]},
                    annotations=annotations,
                    resource_version=obj.metadata.resource_version if obj else None,
                ),
                type="Opaque",
                data=data,
            )
            try:
                if obj is None:
                    self._call("create", name, partial(self._create, body))
                else:
                    self._call(operation, name, partial(self._replace, name, body))
                return
            except DriverError as exc:
                if "HTTP 409" not in exc.message:
                    raise
        raise DriverError(
            self.name, operation, "kept conflicting with another writer", retryable=True
        )

    def _create(self, body: Any) -> Any:
        return self.api.create_namespaced_secret(self.namespace, body)

    def _replace(self, name: str, body: Any) -> Any:
        return self.api.replace_namespaced_secret(self._id(name), self.namespace, body)

    def put_pending(self, name: str, value: Secret, *, version_id: str) -> None:
        def change(
            data: dict[str, str], stages: dict[str, frozenset[Stage]], created: dict[str, str]
        ) -> bool:
            key = f"v-{version_id}"
            if key in data:
                if _unb64(data[key]) != value.reveal():
                    raise DriverError(
                        self.name, "put", f"version {version_id} exists with another value"
                    )
                return False
            for vid in stages:
                stages[vid] = stages[vid] - {Stage.PENDING}
            data[key] = _b64(value.reveal())
            first = not any(Stage.CURRENT in s for s in stages.values())
            stages[version_id] = frozenset({Stage.PENDING, *([Stage.CURRENT] if first else [])})
            created[version_id] = self.clock.now().isoformat()
            return True

        self._write("put", name, change)

    def promote(self, name: str, version_id: str) -> None:
        def change(
            _data: dict[str, str], stages: dict[str, frozenset[Stage]], _created: dict[str, str]
        ) -> bool:
            if version_id not in stages:
                raise NotFoundError(f"secret {name!r} has no version {version_id}", path=name)
            after = promote_labels(stages, version_id)
            if after == stages:
                return False
            stages.clear()
            stages.update(after)
            return True

        self._write("promote", name, change)

    def discard_pending(self, name: str, version_id: str) -> None:
        def change(
            _data: dict[str, str], stages: dict[str, frozenset[Stage]], _created: dict[str, str]
        ) -> bool:
            if Stage.PENDING not in stages.get(version_id, frozenset()):
                return False
            stages[version_id] = stages[version_id] - {Stage.PENDING}
            return True

        try:
            self._write("discard", name, change)
        except NotFoundError:
            return
