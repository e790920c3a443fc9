"""A value that never prints itself."""

from __future__ import annotations

__all__ = ["REDACTED", "Secret"]

REDACTED = "[REDACTED]"


class Secret:
    """Wraps a secret value. ``str``/``repr``/``format`` show ``[REDACTED]``; ``reveal()`` gives it.

    >>> s = Secret("hunter2")
    >>> f"{s}"
    '[REDACTED]'
    >>> s.reveal()
    'hunter2'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)
