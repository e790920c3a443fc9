"""The in-memory reference :class:`~deployops.ports.RotatingSecretStore` (tests, dry runs).

It applies the same label rule as every store (:func:`~deployops.domain.secrets.promote_labels`)
and can be told to fail, so a store that is down mid-rotation can be shown.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import ClassVar

from deployops.clock import Clock, SystemClock
from deployops.domain.secrets import SecretInfo, SecretVersion, Stage, promote_labels
from deployops.errors import DriverError, NotFoundError
from deployops.secret import Secret

__all__ = ["MemorySecretStore"]


class MemorySecretStore:
    name: ClassVar[str] = "memory"
    capabilities: ClassVar[frozenset[str]] = frozenset({"get", "list", "rotate", "versions"})

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self._values: dict[str, dict[str, Secret]] = {}
        self._labels: dict[str, dict[str, frozenset[Stage]]] = {}
        self._created: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()
        self.down = False  # set True to make every call fail as a store that is unreachable

    def _check(self, operation: str) -> None:
        if self.down:
            raise DriverError(self.name, operation, "store unreachable", retryable=True)

    def _missing(self, name: str) -> NotFoundError:
        return NotFoundError(f"secret {name!r} does not exist", path=name)

    def get(self, name: str) -> Secret:
        return self.get_version(name)

    def list(self) -> Sequence[str]:
        self._check("list")
        return sorted(self._values)

    def get_version(
        self, name: str, *, stage: Stage = Stage.CURRENT, version_id: str | None = None
    ) -> Secret:
        self._check("get")
        with self._lock:
            if name not in self._values:
                raise self._missing(name)
            if version_id is None:
                version_id = next((v for v, s in self._labels[name].items() if stage in s), None)
            if version_id is None or version_id not in self._values[name]:
                raise NotFoundError(
                    f"secret {name!r} has no version {version_id or stage.value}", path=name
                )
            return self._values[name][version_id]

    def describe(self, name: str) -> SecretInfo:
        self._check("describe")
        with self._lock:
            if name not in self._values:
                raise self._missing(name)
            return SecretInfo(
                name=name,
                versions=tuple(
                    SecretVersion(
                        version_id=v,
                        stages=s,
                        created_at=self._created.get((name, v)),  # type: ignore[arg-type]
                    )
                    for v, s in self._labels[name].items()
                ),
            )

    def put_pending(self, name: str, value: Secret, *, version_id: str) -> None:
        self._check("put")
        with self._lock:
            values = self._values.setdefault(name, {})
            labels = self._labels.setdefault(name, {})
            if version_id in values:
                if values[version_id] != value:
                    raise DriverError(
                        self.name, "put", f"version {version_id} exists with another value"
                    )
                return
            for vid, stages in list(labels.items()):
                labels[vid] = stages - {Stage.PENDING}
            values[version_id] = value
            first = not any(Stage.CURRENT in s for s in labels.values())
            labels[version_id] = frozenset({Stage.PENDING, *([Stage.CURRENT] if first else [])})
            self._created[(name, version_id)] = self.clock.now()

    def promote(self, name: str, version_id: str) -> None:
        self._check("promote")
        with self._lock:
            if name not in self._labels:
                raise self._missing(name)
            try:
                self._labels[name] = promote_labels(self._labels[name], version_id)
            except KeyError:
                raise NotFoundError(
                    f"secret {name!r} has no version {version_id}", path=name
                ) from None

    def discard_pending(self, name: str, version_id: str) -> None:
        self._check("discard")
        with self._lock:
            labels = self._labels.get(name, {})
            if version_id in labels:
                labels[version_id] = labels[version_id] - {Stage.PENDING}
