"""A local encrypted secret store: one JSON file of AES-GCM ciphertexts (SEC-1).

For the local platform's staging and production, where ``.env.local`` is refused. Each version
is encrypted with AES-256-GCM under a 32-byte key read from a key file that only its owner may
read (mode 0600); the secret name and version id are the associated data, so a ciphertext copied
to another name or version does not decrypt. Versions carry the staging labels of
:mod:`deployops.domain.secrets`, so rotation works here exactly as on Secrets Manager.

>>> store = EncryptedFileSecretStore(path=Path("s.json"), key_file=Path("k"))  # doctest: +SKIP
>>> store.put_pending("jwt-secret", Secret("v1"), version_id="r1")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets as _random
import stat
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from deployops.clock import Clock, SystemClock
from deployops.domain.secrets import SecretInfo, SecretVersion, Stage, promote_labels
from deployops.errors import ConfigError, DriverError, NotFoundError
from deployops.secret import Secret

__all__ = ["KEY_BYTES", "EncryptedFileSecretStore", "write_key_file"]

KEY_BYTES = 32
_DRIVER = "encrypted-file"


def write_key_file(path: Path) -> None:
    """Create a new random key file with mode 0600; an existing file is never overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(base64.b64encode(_random.token_bytes(KEY_BYTES)).decode("ascii") + "\n")


class EncryptedFileSecretStore:
    """Secrets in ``path``, encrypted under the key in ``key_file``. No I/O in ``__init__``."""

    name: ClassVar[str] = "encrypted-file"
    capabilities: ClassVar[frozenset[str]] = frozenset({"get", "list", "rotate", "versions"})

    def __init__(self, *, path: Path, key_file: Path, clock: Clock | None = None) -> None:
        self.path = path
        self.key_file = key_file
        self.clock = clock or SystemClock()

    # ------------------------------------------------------------------ key and file
    def _key(self) -> bytes:
        kf = self.key_file
        try:
            st = kf.stat()
        except FileNotFoundError:
            raise ConfigError(
                f"the secret store's key file {kf} does not exist",
                path="secrets.stores.key_file",
                hint=f"create one with `deployops secrets keygen --key-file {kf}` "
                "(or point key_file at the existing one)",
            ) from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"the secret store's key file {kf} can be read by other users "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); refusing to use it",
                path="secrets.stores.key_file",
                hint=f"chmod 600 {kf}, then rotate every secret in the store "
                "(docs/runbooks/leaked-secret.md)",
            )
        raw = kf.read_bytes().strip()
        try:
            key = base64.b64decode(raw, validate=True)
        except ValueError:
            key = b""
        if len(key) != KEY_BYTES:
            raise ConfigError(
                f"the key file {kf} does not hold a base64 {KEY_BYTES}-byte key",
                path="secrets.stores.key_file",
                hint=f"create a new one with `deployops secrets keygen --key-file PATH`; "
                f"{kf} is left as it is",
            )
        return key

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _load(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"secrets": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DriverError(
                _DRIVER,
                "read",
                f"{self.path} is not a readable secret store ({type(exc).__name__})",
                hint=f"restore {self.path} from its backup",
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("secrets"), dict):
            raise DriverError(_DRIVER, "read", f"{self.path} is not a secret store file")
        return data

    def _save(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)  # atomic: a crash leaves the old or the new file

    def _entry(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        entry = data["secrets"].get(name)
        if entry is None:
            raise NotFoundError(
                f"secret {name!r} is not in the encrypted store {self.path}",
                path=name,
                hint=f"`deployops secrets status` shows the managed secrets; create it with "
                f"`deployops secrets set {name}`",
            )
        assert isinstance(entry, dict)
        return entry

    # ------------------------------------------------------------------ crypto
    def _aad(self, name: str, version_id: str) -> bytes:
        return f"{name}\0{version_id}".encode()

    def _encrypt(self, key: bytes, name: str, version_id: str, value: str) -> dict[str, str]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = _random.token_bytes(12)
        ct = AESGCM(key).encrypt(nonce, value.encode(), self._aad(name, version_id))
        return {
            "nonce": base64.b64encode(nonce).decode(),
            "ciphertext": base64.b64encode(ct).decode(),
        }

    def _decrypt(self, key: bytes, name: str, version_id: str, item: dict[str, Any]) -> Secret:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            plain = AESGCM(key).decrypt(
                base64.b64decode(item["nonce"]),
                base64.b64decode(item["ciphertext"]),
                self._aad(name, version_id),
            )
        except (InvalidTag, KeyError, ValueError):
            raise DriverError(
                _DRIVER,
                "decrypt",
                f"version {version_id} of {name!r} does not decrypt with {self.key_file} "
                "(wrong key, or the file was altered)",
                hint=f"use the key file this store was written with; check {self.path}",
            ) from None
        return Secret(plain.decode())

    # ------------------------------------------------------------------ SecretStore
    def get(self, name: str) -> Secret:
        return self.get_version(name)

    def list(self) -> Sequence[str]:
        return sorted(self._load()["secrets"])

    def get_version(
        self, name: str, *, stage: Stage = Stage.CURRENT, version_id: str | None = None
    ) -> Secret:
        key = self._key()
        entry = self._entry(self._load(), name)
        versions: dict[str, Any] = entry["versions"]
        if version_id is None:
            version_id = next(
                (v for v, item in versions.items() if stage.value in item["stages"]), None
            )
        if version_id is None or version_id not in versions:
            raise NotFoundError(
                f"secret {name!r} has no version {version_id or stage.value}",
                path=name,
                hint=f"`deployops secrets status` shows the versions of {name}",
            )
        return self._decrypt(key, name, version_id, versions[version_id])

    def describe(self, name: str) -> SecretInfo:
        entry = self._entry(self._load(), name)
        return SecretInfo(
            name=name,
            versions=tuple(
                SecretVersion(
                    version_id=vid,
                    stages=frozenset(Stage(s) for s in item["stages"]),
                    created_at=datetime.fromisoformat(item["created_at"]),
                )
                for vid, item in entry["versions"].items()
            ),
        )

    def put_pending(self, name: str, value: Secret, *, version_id: str) -> None:
        key = self._key()
        with self._locked():
            data = self._load()
            entry = data["secrets"].setdefault(name, {"versions": {}})
            versions: dict[str, Any] = entry["versions"]
            if version_id in versions:
                same = self._decrypt(key, name, version_id, versions[version_id]) == value
                if not same:
                    raise DriverError(
                        _DRIVER,
                        "put",
                        f"version {version_id} of {name!r} exists with another value",
                        hint="use a new version id",
                    )
                return
            for item in versions.values():
                item["stages"] = [s for s in item["stages"] if s != Stage.PENDING.value]
            first = not any(Stage.CURRENT.value in i["stages"] for i in versions.values())
            versions[version_id] = {
                **self._encrypt(key, name, version_id, value.reveal()),
                "stages": [Stage.PENDING.value, *([Stage.CURRENT.value] if first else [])],
                "created_at": self.clock.now().isoformat(),
            }
            self._save(data)

    def promote(self, name: str, version_id: str) -> None:
        with self._locked():
            data = self._load()
            versions: dict[str, Any] = self._entry(data, name)["versions"]
            labels = {
                v: frozenset(Stage(s) for s in item["stages"]) for v, item in versions.items()
            }
            try:
                after = promote_labels(labels, version_id)
            except KeyError:
                raise NotFoundError(
                    f"secret {name!r} has no version {version_id}", path=name
                ) from None
            if after == labels:
                return
            for vid, stages in after.items():
                versions[vid]["stages"] = sorted(s.value for s in stages)
            self._save(data)

    def discard_pending(self, name: str, version_id: str) -> None:
        with self._locked():
            data = self._load()
            entry = data["secrets"].get(name)
            if entry is None or version_id not in entry["versions"]:
                return
            item = entry["versions"][version_id]
            if Stage.PENDING.value not in item["stages"]:
                return
            item["stages"] = [s for s in item["stages"] if s != Stage.PENDING.value]
            if not item["stages"]:
                del entry["versions"][version_id]  # never current: nothing will need it
            if not entry["versions"]:
                del data["secrets"][name]
            self._save(data)
