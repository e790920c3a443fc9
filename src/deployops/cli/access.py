"""The role check every mutating command passes through, and its audit entry (SEC-4).

:data:`REQUIRED` is the one table of which command needs which role; the global callback of
``main.py`` calls :func:`check` before the command runs, and :func:`finish` writes the audit
entry (who, what, when, from where, outcome) once the exit code is known. A refusal is
audited too and ends with exit 5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deployops.cli.app import App
from deployops.domain.access import Role

__all__ = ["REQUIRED", "check", "command_path", "finish"]

# command words -> the least role that may run it. Reads are open to viewers.
REQUIRED: dict[tuple[str, ...], Role] = {
    ("deploy",): Role.DEPLOYER,
    ("resume",): Role.DEPLOYER,
    ("rollback",): Role.DEPLOYER,
    ("decide",): Role.DEPLOYER,
    ("serve",): Role.DEPLOYER,
    ("local", "up"): Role.DEPLOYER,
    ("local", "down"): Role.DEPLOYER,
    ("lock", "release"): Role.ADMIN,
    ("secrets", "rotate"): Role.ADMIN,
    ("secrets", "resume"): Role.ADMIN,
    ("secrets", "get"): Role.ADMIN,
    ("secrets", "set"): Role.ADMIN,
    ("secrets", "keygen"): Role.ADMIN,
    ("access", "add-token"): Role.ADMIN,
}


@dataclass
class _Pending:
    app: App
    actor: str
    source: str
    action: str
    target: str
    argv: tuple[str, ...]


_pending: list[_Pending] = []


def command_path(words: Sequence[str]) -> tuple[str, ...]:
    """The longest key of :data:`REQUIRED` that ``words`` start with, or ``()``."""
    for n in (2, 1):
        if tuple(words[:n]) in REQUIRED:
            return tuple(words[:n])
    return ()


def check(app: App, words: Sequence[str]) -> None:
    """Refuse (exit 5, audited) a command the caller's role does not allow."""
    path = command_path(words)
    if not path:
        return
    from deployops.clock import SystemClock
    from deployops.config.access import resolve_identity
    from deployops.errors import AccessDeniedError, ConfigError
    from deployops.store import AuditRecord

    needed = REQUIRED[path]
    try:
        root = app.project.root
    except ConfigError:
        return  # no project: the command itself fails on that, before changing anything
    who = resolve_identity(root)
    action = " ".join(path)
    target = app.env or ""
    if not who.role.allows(needed):
        app.store.audit(
            AuditRecord(
                ts=SystemClock().now(),
                actor=who.name,
                action=action,
                target=target,
                source=who.source,
                outcome="refused",
                detail={"role": who.role.value, "needed": needed.value, "argv": list(words)},
            )
        )
        raise AccessDeniedError(
            who=who.name, role=who.role.value, needed=needed.value, action=f"'{action}'"
        )
    app.identity = who
    _pending.append(
        _Pending(
            app=app,
            actor=who.name,
            source=who.source,
            action=action,
            target=target,
            argv=tuple(words),
        )
    )


def finish(exit_code: int) -> None:
    """Write the audit entry of the command that passed :func:`check`, with its outcome."""
    while _pending:
        from deployops.clock import SystemClock
        from deployops.store import AuditRecord

        p = _pending.pop()
        try:
            p.app.store.audit(
                AuditRecord(
                    ts=SystemClock().now(),
                    actor=p.actor,
                    action=p.action,
                    target=p.target,
                    source=p.source,
                    outcome="ok" if exit_code == 0 else f"exit {exit_code}",
                    detail={"argv": list(p.argv)},
                )
            )
        except Exception as exc:  # noqa: BLE001 - the command's own result stands
            import sys

            sys.stderr.write(f"warning: could not write the audit entry: {type(exc).__name__}\n")
