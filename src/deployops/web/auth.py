"""Bearer tokens of the API and the dashboard, each mapped to a role (SEC-4).

Tokens live in a token file (``.deployops/api-tokens.json`` by default) that holds only their
SHA-256 hashes, never the tokens themselves::

    {"tokens": [{"name": "ci", "role": "deployer", "sha256": "9f86d0...",
                 "expires": "2027-01-01T00:00:00+00:00"}]}

``deployops tokens create --name ci --role deployer`` adds one and prints the token once.
A request without a token is answered 401, with a wrong or expired one 401, with a role below
the route's 403. The dashboard keeps the token in a cookie set by its sign-in form.

    tokens = TokenFile.load(path)
    principal = tokens.authenticate(token, now=clock.now())  # -> Principal or AuthError
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from deployops.domain.access import Role
from deployops.errors import ConfigError

__all__ = [
    "COOKIE",
    "AuthError",
    "Principal",
    "TokenEntry",
    "TokenFile",
    "create_token",
    "default_token_path",
    "hash_token",
]

COOKIE = "deployops_token"
_PREFIX = "dpo_"


class AuthError(Exception):
    """Authentication failed (401) or the role is too low (403); ``message`` says which."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Principal:
    """Who called: the token's name and role."""

    name: str
    role: Role

    @property
    def actor(self) -> str:
        """How the audit log names the caller."""
        return f"api:{self.name}"


@dataclass(frozen=True, slots=True)
class TokenEntry:
    name: str
    role: Role
    sha256: str
    expires: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "role": self.role.value, "sha256": self.sha256}
        if self.expires is not None:
            out["expires"] = self.expires.isoformat()
        return out


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def default_token_path(state_dir: Path) -> Path:
    """Where ``deployops serve`` and ``deployops tokens`` look by default."""
    return state_dir / "api-tokens.json"


@dataclass(frozen=True, slots=True)
class TokenFile:
    path: Path | None
    entries: tuple[TokenEntry, ...] = ()

    @classmethod
    def load(cls, path: Path) -> TokenFile:
        """Read ``path``; a missing file is an empty token set (every call is then 401)."""
        if not path.exists():
            return cls(path=path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(
                f"cannot read the token file: {exc}",
                path=str(path),
                hint="recreate it with `deployops tokens create --name NAME --role viewer`",
            ) from None
        items = doc.get("tokens", []) if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise ConfigError(
                'expected {"tokens": [...]}',
                path=f"{path}:tokens",
                hint="recreate it with `deployops tokens create --name NAME --role viewer`",
            )
        entries = []
        for i, item in enumerate(items):
            where = f"{path}:tokens[{i}]"
            if not isinstance(item, dict) or not {"name", "role", "sha256"} <= item.keys():
                raise ConfigError("needs name, role and sha256", path=where)
            try:
                role = Role.parse(str(item["role"]))
                expires = (
                    datetime.fromisoformat(str(item["expires"])) if item.get("expires") else None
                )
            except ValueError as exc:
                raise ConfigError(str(exc), path=where) from None
            entries.append(
                TokenEntry(
                    name=str(item["name"]), role=role, sha256=str(item["sha256"]), expires=expires
                )
            )
        return cls(path=path, entries=tuple(entries))

    @classmethod
    def of(cls, tokens: dict[str, tuple[str, Role]]) -> TokenFile:
        """In memory, from ``{token: (name, role)}`` (for tests and embedding)."""
        return cls(
            path=None,
            entries=tuple(
                TokenEntry(name=name, role=role, sha256=hash_token(tok))
                for tok, (name, role) in tokens.items()
            ),
        )

    def authenticate(self, token: str | None, *, now: datetime) -> Principal:
        if not token:
            raise AuthError(
                401,
                "unauthenticated",
                "no token: send 'Authorization: Bearer <token>' "
                "(create one with `deployops tokens create`)",
            )
        digest = hash_token(token)
        for entry in self.entries:
            if hmac.compare_digest(entry.sha256, digest):
                if entry.expires is not None and entry.expires <= now:
                    raise AuthError(
                        401,
                        "token_expired",
                        f"the token {entry.name!r} expired at {entry.expires.isoformat()}: "
                        "create a new one with `deployops tokens create`",
                    )
                return Principal(name=entry.name, role=entry.role)
        raise AuthError(401, "invalid_token", "the token is not known: check it or create one")

    @staticmethod
    def authorize(principal: Principal, needed: Role) -> None:
        if not principal.role.allows(needed):
            raise AuthError(
                403,
                "forbidden",
                f"this needs the {needed.value} role; the token {principal.name!r} is "
                f"{principal.role.value}",
            )


def create_token(
    path: Path, *, name: str, role: Role, expires: datetime | None = None
) -> tuple[str, TokenEntry]:
    """Add a token to ``path`` (replacing one of the same name); returns the token, which is
    not stored anywhere, and its entry."""
    current = TokenFile.load(path)
    token = _PREFIX + secrets.token_urlsafe(32)
    entry = TokenEntry(name=name, role=role, sha256=hash_token(token), expires=expires)
    kept = [e for e in current.entries if e.name != name]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"tokens": [e.to_json() for e in [*kept, entry]]}, indent=2) + "\n",
        encoding="utf-8",
    )
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return token, entry
