"""Roles and what each may do (SEC-4): one definition for the CLI and the API.

>>> Role.DEPLOYER.allows(Role.VIEWER)
True
>>> Role.VIEWER.allows(Role.DEPLOYER)
False
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Role"]


class Role(StrEnum):
    """Ordered roles: each includes what the ones below it may do.

    - ``viewer``: reads status, history, reports (never a secret value)
    - ``deployer``: also deploys, rolls back, resumes, signs checklist items, decides holds
    - ``admin``: also reads secret values, overrides gates, releases locks by force, rotates
    """

    VIEWER = "viewer"
    DEPLOYER = "deployer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        """Whether a caller with this role may do what ``needed`` is required for."""
        return self.rank >= needed.rank

    @classmethod
    def parse(cls, text: str) -> Role:
        """``Role.parse("Deployer")``; ``ValueError`` naming the valid roles otherwise."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            valid = ", ".join(r.value for r in cls)
            raise ValueError(f"unknown role {text!r}: use one of {valid}") from None


_RANK = {Role.VIEWER: 0, Role.DEPLOYER: 1, Role.ADMIN: 2}
