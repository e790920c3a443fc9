"""What every notification channel does the same way: ``send`` and ``resolve`` (the
``Notifier`` port) build the channel's own message and hand it to the channel's delivery.
A channel supplies the two steps, :meth:`Channel._compose` and :meth:`Channel._deliver`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar, Generic, TypeVar

__all__ = ["Channel"]

_M = TypeVar("_M")


class Channel(ABC, Generic[_M]):
    """A :class:`deployops.ports.Notifier` whose messages are of type ``_M`` (a JSON body,
    an e-mail)."""

    name: ClassVar[str]

    @abstractmethod
    def _compose(
        self,
        *,
        severity: str,
        title: str,
        text: str,
        dedup_key: str,
        fields: Mapping[str, str],
        kind: str,
        resolved: bool,
    ) -> _M:
        """The message for a notice, or for its resolution when ``resolved``."""

    @abstractmethod
    def _deliver(self, message: _M) -> None:
        """Deliver or raise ``NotifyError``."""

    def send(
        self,
        *,
        severity: str,
        title: str,
        text: str,
        dedup_key: str,
        fields: Mapping[str, str],
        kind: str = "",
    ) -> None:
        self._deliver(
            self._compose(
                severity=severity,
                title=title,
                text=text,
                dedup_key=dedup_key,
                fields=fields,
                kind=kind,
                resolved=False,
            )
        )

    def resolve(
        self,
        *,
        dedup_key: str,
        title: str,
        text: str = "",
        severity: str = "info",
        fields: Mapping[str, str] | None = None,
        kind: str = "",
    ) -> None:
        self._deliver(
            self._compose(
                severity=severity,
                title=title,
                text=text,
                dedup_key=dedup_key,
                fields=fields or {},
                kind=kind,
                resolved=True,
            )
        )
