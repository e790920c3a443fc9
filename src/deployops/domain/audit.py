"""The audit log's hash chain (SEC-4): each entry's hash covers its fields and the previous
entry's hash, so an edited, inserted or removed entry breaks every hash after it. Pure.

>>> h1 = entry_hash("", {"id": 1, "actor": "alice", "action": "deploy"})
>>> h2 = entry_hash(h1, {"id": 2, "actor": "bob", "action": "rollback"})
>>> verify_chain([(1, "", h1, {"id": 1, "actor": "alice", "action": "deploy"}),
...               (2, h1, h2, {"id": 2, "actor": "bob", "action": "rollback"})])
[]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["GENESIS", "ChainProblem", "entry_hash", "verify_chain"]

GENESIS = ""  # the previous hash of the first entry


def entry_hash(previous: str, fields: Mapping[str, Any]) -> str:
    """SHA-256 over the previous hash and the entry's fields as canonical JSON."""
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{previous}\n{body}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainProblem:
    entry_id: int
    message: str


def verify_chain(
    entries: Iterable[tuple[int, str, str, Mapping[str, Any]]],
) -> list[ChainProblem]:
    """Problems in ``(id, prev_hash, hash, fields)`` entries, oldest first: an entry whose
    fields no longer give its hash was edited; one whose ``prev_hash`` is not its
    predecessor's hash follows a removed (or inserted) entry."""
    problems: list[ChainProblem] = []
    expected_prev = GENESIS
    for entry_id, prev, stored, fields in entries:
        if prev != expected_prev:
            problems.append(
                ChainProblem(
                    entry_id,
                    "does not follow the entry before it: an entry before it was removed, "
                    "inserted or edited",
                )
            )
        if entry_hash(prev, fields) != stored:
            problems.append(ChainProblem(entry_id, "was edited after it was written"))
        expected_prev = stored
    return problems
