"""New values for each kind of managed secret (SEC-2, SEC-3), and the checks of their shape.

- ``database-password``: ``{"username", "password"}``; rotations alternate between the two
  configured roles, so the role the replicas use keeps its password until they have moved.
- ``jwt-secret``: ``{"kid", "key", "previous": [{"kid", "key", "verify_until"}]}``: the
  previous signing key still verifies tokens for their lifetime.
- ``api-keys``: ``{"current", "previous"}``: clients holding the old key keep working until
  the next rotation.
- ``encryption-keys``: ``{"primary", "keys": {kid: key}}``: old keys stay for decryption, the
  newest ``keep_versions`` of them.
"""

from __future__ import annotations

import json
import secrets as _random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from deployops.domain.secrets import SecretKind
from deployops.errors import RotationError
from deployops.secret import Secret

__all__ = ["check_value", "new_value"]


def _token(nbytes: int) -> str:
    return _random.token_urlsafe(nbytes)


def _doc(value: Secret | None) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        doc = json.loads(value.reveal())
    except ValueError:
        return {"legacy": value.reveal()}  # a plain value written before deployops managed it
    return doc if isinstance(doc, dict) else {}


def new_value(
    kind: SecretKind,
    *,
    current: Secret | None,
    settings: Mapping[str, str],
    now: datetime,
    version_id: str,
) -> Secret:
    old = _doc(current)
    if kind is SecretKind.DATABASE_PASSWORD:
        users = settings.get("users", "app_a,app_b").split(",")
        in_use = old.get("username")
        user = users[1] if in_use == users[0] else users[0]
        return Secret(json.dumps({"username": user, "password": _token(24)}))
    if kind is SecretKind.JWT_SECRET:
        lifetime = float(settings.get("token_lifetime", "3600"))
        previous = []
        if "key" in old:
            until = (now + timedelta(seconds=lifetime)).isoformat()
            previous = [{"kid": old.get("kid", ""), "key": old["key"], "verify_until": until}]
        return Secret(json.dumps({"kid": version_id, "key": _token(48), "previous": previous}))
    if kind is SecretKind.API_KEYS:
        prev = old.get("current", old.get("legacy"))
        return Secret(json.dumps({"current": _token(32), "previous": prev}))
    keep = int(settings.get("keep_versions", "5"))
    keys: dict[str, str] = dict(old.get("keys", {}))
    keys[version_id] = _token(32)
    newest = list(keys)[-keep:]
    return Secret(json.dumps({"primary": version_id, "keys": {k: keys[k] for k in newest}}))


def check_value(kind: SecretKind, value: Secret, *, current: Secret | None) -> None:
    """Raise ``RotationError`` if ``value`` lacks what its kind needs (never quoting it)."""
    doc = _doc(value)
    old = _doc(current)
    problem = ""
    if kind is SecretKind.DATABASE_PASSWORD and not (doc.get("username") and doc.get("password")):
        problem = "needs a username and a password"
    elif kind is SecretKind.JWT_SECRET:
        if not doc.get("key"):
            problem = "has no signing key"
        elif "key" in old and not any(p.get("key") == old["key"] for p in doc.get("previous", [])):
            problem = "does not keep the previous key for verification"
    elif kind is SecretKind.API_KEYS and not doc.get("current"):
        problem = "has no current key"
    elif kind is SecretKind.ENCRYPTION_KEYS:
        keys = doc.get("keys", {})
        if doc.get("primary") not in keys:
            problem = "has no primary key"
        elif old.get("primary") and old["primary"] not in keys:
            problem = "dropped the key the data is encrypted with now"
    if problem:
        raise RotationError(f"the new value of this {kind.value} {problem}")
