"""Who is calling and with which role (SEC-4): one resolution for the CLI and the web API.

The project's access file, ``.deployops/access.yaml`` beside ``deployops.yaml`` (mode 0600),
lists tokens by their SHA-256 (never the token itself) and may map operating-system users to
roles::

    tokens:
      - {name: ci-pipeline, role: deployer, sha256: 9f86d0...}
    users:
      alice: admin
      bob: viewer
    default_role: viewer   # everybody else (default: viewer)

A caller presents a token through ``DEPLOYOPS_TOKEN``, the file named by
``DEPLOYOPS_TOKEN_FILE``, or ``~/.config/deployops/token``; the web API passes its bearer token
to :func:`identity_for_token`. Without a token, the operating-system user is looked up in
``users``. Without an access file the project is one person's: that user is ``admin``
(``deployops access add-token`` writes the file and turns roles on).
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import secrets as _random
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deployops.domain.access import Role
from deployops.errors import ConfigError

__all__ = [
    "ACCESS_FILE",
    "AccessFile",
    "Identity",
    "access_file_path",
    "add_token",
    "identity_for_token",
    "load_access_file",
    "resolve_identity",
    "token_digest",
]

ACCESS_FILE = "access.yaml"
TOKEN_ENV = "DEPLOYOPS_TOKEN"  # noqa: S105 - a variable name
TOKEN_FILE_ENV = "DEPLOYOPS_TOKEN_FILE"  # noqa: S105 - a variable name


@dataclass(frozen=True, slots=True)
class Identity:
    """A caller: ``name`` (a token's name or a user), its role, how it was known and from
    where it called (host and terminal, or a client address)."""

    name: str
    role: Role
    via: str  # token | user | single-user
    source: str


@dataclass(frozen=True, slots=True)
class _Token:
    name: str
    role: Role
    sha256: str


@dataclass(frozen=True, slots=True)
class AccessFile:
    tokens: tuple[_Token, ...] = ()
    users: Mapping[str, Role] | None = None
    default_role: Role = Role.VIEWER
    exists: bool = False


def access_file_path(project_root: Path) -> Path:
    return project_root / ".deployops" / ACCESS_FILE


def token_digest(token: str) -> str:
    return hashlib.sha256(token.strip().encode()).hexdigest()


def load_access_file(path: Path) -> AccessFile:
    """Read the access file; a missing one means single-user. Errors name the bad field."""
    if not path.is_file():
        return AccessFile()
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(
            f"{path} can be changed by other users (mode {mode:04o}): anyone could give "
            "themselves a role",
            path=str(path),
            hint=f"chmod 600 {path}",
        )
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        raise ConfigError(
            "not valid YAML", path="(root)", file=str(path), hint="see docs/cli.md, access"
        ) from None
    issues: list[str] = []
    tokens: list[_Token] = []
    for i, item in enumerate(raw.get("tokens") or []):
        try:
            tokens.append(
                _Token(
                    name=str(item["name"]),
                    role=Role.parse(str(item["role"])),
                    sha256=str(item["sha256"]).lower(),
                )
            )
        except (KeyError, TypeError):
            issues.append(f"tokens[{i}]: needs name, role and sha256")
        except ValueError as exc:
            issues.append(f"tokens[{i}].role: {exc}")
    users: dict[str, Role] = {}
    for user, role in (raw.get("users") or {}).items():
        try:
            users[str(user)] = Role.parse(str(role))
        except ValueError as exc:
            issues.append(f"users.{user}: {exc}")
    try:
        default = Role.parse(str(raw.get("default_role", "viewer")))
    except ValueError as exc:
        issues.append(f"default_role: {exc}")
        default = Role.VIEWER
    if issues:
        raise ConfigError("; ".join(issues), path="access", file=str(path))
    return AccessFile(tokens=tuple(tokens), users=users, default_role=default, exists=True)


def identity_for_token(token: str, access: AccessFile, *, source: str) -> Identity | None:
    """The identity a token stands for, or ``None`` for an unknown token (compared in constant
    time). The web API calls this with a bearer token."""
    digest = token_digest(token)
    for t in access.tokens:
        if hmac.compare_digest(t.sha256, digest):
            return Identity(name=t.name, role=t.role, via="token", source=source)
    return None


def local_source() -> str:
    """``host/tty`` for a command typed on a terminal, ``host`` otherwise."""
    try:
        tty = os.ttyname(0)
    except OSError:
        tty = ""
    return f"{socket.gethostname()}{('/' + tty.removeprefix('/dev/')) if tty else ''}"


def _presented_token(environ: Mapping[str, str]) -> str | None:
    if environ.get(TOKEN_ENV):
        return environ[TOKEN_ENV]
    file = environ.get(TOKEN_FILE_ENV)
    path = Path(file) if file else Path.home() / ".config" / "deployops" / "token"
    if not path.is_file():
        if file:
            raise ConfigError(
                f"{TOKEN_FILE_ENV} names {path}, which does not exist",
                path=TOKEN_FILE_ENV,
                hint=f"point {TOKEN_FILE_ENV} at your token file, or unset it",
            )
        return None
    if stat.S_IMODE(path.stat().st_mode) & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the token file {path} can be read by other users",
            path=str(path),
            hint=f"chmod 600 {path}",
        )
    return path.read_text(encoding="utf-8").strip() or None


def resolve_identity(project_root: Path, *, environ: Mapping[str, str] | None = None) -> Identity:
    """The caller of a CLI command. An unknown token is an error (exit 2), never a silent
    downgrade, so a mistyped CI secret is noticed."""
    env = os.environ if environ is None else environ
    access = load_access_file(access_file_path(project_root))
    source = local_source()
    user = getpass.getuser()
    token = _presented_token(env)
    if token is not None and access.exists:
        found = identity_for_token(token, access, source=source)
        if found is None:
            raise ConfigError(
                "the token presented is not in this project's access file",
                path=TOKEN_ENV,
                hint=f"ask an admin for a token (`deployops access add-token`), or unset "
                f"{TOKEN_ENV} / {TOKEN_FILE_ENV}",
            )
        return found
    if not access.exists:
        return Identity(name=user, role=Role.ADMIN, via="single-user", source=source)
    role = (access.users or {}).get(user, access.default_role)
    return Identity(name=user, role=role, via="user", source=source)


def add_token(project_root: Path, *, name: str, role: Role) -> str:
    """Create a token for ``name`` with ``role``; only its digest is written. Returns the token
    (shown once)."""
    path = access_file_path(project_root)
    raw: dict[str, Any] = {}
    if path.is_file():
        load_access_file(path)  # validates
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    tokens = [t for t in raw.get("tokens") or [] if t.get("name") != name]
    token = "dop_" + _random.token_urlsafe(32)
    tokens.append({"name": name, "role": role.value, "sha256": token_digest(token)})
    raw["tokens"] = tokens
    if "users" not in raw:
        # the person turning roles on keeps admin
        raw["users"] = {getpass.getuser(): Role.ADMIN.value}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(raw, fh, sort_keys=False)
    os.replace(tmp, path)
    return token
