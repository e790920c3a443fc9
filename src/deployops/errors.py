"""The one exception tree of deployops.

Everything deployops raises on purpose derives from :class:`DeployopsError`. Drivers translate
vendor errors (HAProxy, boto3, psycopg, subprocess) at their edge with ``raise ... from exc``.
Only ``cli`` and ``web`` turn these into messages and exit codes:

=========  ==========================================================
exit code  meaning
=========  ==========================================================
0          success
1          failed (a step failed; traffic and data left as they were)
2          bad configuration or usage (nothing was changed)
3          rolled back (the new version was reverted)
4          lock held (another operation owns the environment/service)
=========  ==========================================================

Messages never contain secret values: secrets travel as :class:`deployops.secret.Secret`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "EXIT_FAILED",
    "EXIT_LOCK_HELD",
    "EXIT_OK",
    "EXIT_ROLLED_BACK",
    "EXIT_USAGE",
    "BackupError",
    "ConfigError",
    "ConfigIssue",
    "DeploymentError",
    "DeployopsError",
    "DriverError",
    "GateFailedError",
    "LockHeldError",
    "NotFoundError",
    "PlatformUnavailableError",
    "RollbackError",
    "RolledBackError",
    "RotationError",
    "TimeoutError_",
    "UnsupportedError",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ROLLED_BACK = 3
EXIT_LOCK_HELD = 4


class DeployopsError(Exception):
    """Base of every deliberate deployops error. ``hint`` tells the user what to do."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  fix: {self.hint}"
        return self.message


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration: where (``file:path``) and what, with the fix."""

    path: str
    message: str
    file: str | None = None

    def render(self) -> str:
        where = f"{self.file}:{self.path}" if self.file else self.path
        return f"{where}: {self.message}" if where else self.message


class ConfigError(DeployopsError):
    """Bad configuration or usage. Collects every issue, not only the first (exit 2)."""

    exit_code = EXIT_USAGE

    def __init__(
        self,
        issues: ConfigIssue | Iterable[ConfigIssue] | str,
        message: str | None = None,
        *,
        path: str = "",
        file: str | None = None,
        hint: str | None = None,
    ) -> None:
        if isinstance(issues, str):
            found: Sequence[ConfigIssue] = (ConfigIssue(path=path, message=issues, file=file),)
        elif isinstance(issues, ConfigIssue):
            found = (issues,)
        else:
            found = tuple(issues)
        self.issues: tuple[ConfigIssue, ...] = tuple(found)
        text = message or "\n".join(i.render() for i in self.issues)
        super().__init__(text, hint=hint)

    @property
    def path(self) -> str:
        return self.issues[0].path if self.issues else ""


class NotFoundError(ConfigError):
    """A named thing (deployment, service, environment) does not exist (exit 2)."""


class GateFailedError(ConfigError):
    """A checklist gate refused the deploy (exit 2, nothing changed): one issue per failing
    item with its evidence; ``outcome`` is the whole gate as JSON."""

    def __init__(
        self, issues: Iterable[ConfigIssue], *, hint: str | None, outcome: dict[str, object]
    ) -> None:
        super().__init__(issues, hint=hint)
        self.outcome = outcome


class UnsupportedError(ConfigError):
    """The platform's driver lacks a capability the operation needs (exit 2)."""


class PlatformUnavailableError(ConfigError):
    """The platform an environment runs on is not reachable (e.g. the local platform is not
    up). Nothing was changed (exit 2)."""


class DriverError(DeployopsError):
    """A platform component failed. ``retryable`` says whether trying again may help."""

    def __init__(
        self,
        driver: str,
        operation: str,
        message: str,
        *,
        retryable: bool = False,
        hint: str | None = None,
    ) -> None:
        super().__init__(f"{driver}: {operation} failed: {message}", hint=hint)
        self.driver = driver
        self.operation = operation
        self.retryable = retryable


class TimeoutError_(DriverError):  # the trailing _ keeps the builtin TimeoutError usable
    """A poll ran past its deadline."""

    def __init__(self, driver: str, operation: str, seconds: float, *, hint: str | None = None):
        super().__init__(
            driver, operation, f"not done after {seconds:g}s", retryable=True, hint=hint
        )
        self.seconds = seconds


class DeploymentError(DeployopsError):
    """A deployment step failed; the plan stopped and traffic stayed on the last good version."""


class RolledBackError(DeployopsError):
    """The new version was rolled back (exit 3)."""

    exit_code = EXIT_ROLLED_BACK


class RollbackError(DeployopsError):
    """A rollback could not be carried out."""


class LockHeldError(DeployopsError):
    """Another operation holds the lock for this environment/service (exit 4)."""

    exit_code = EXIT_LOCK_HELD

    def __init__(
        self,
        key: str,
        owner: str,
        reason: str,
        since: str,
        age_seconds: float,
        *,
        holder_dead: bool = False,
        deployment_id: str | None = None,
    ):
        if holder_dead:
            # The holding process is gone: the operation was interrupted, resume finishes it.
            target = deployment_id or f"-e {key.partition('/')[0]}"
            super().__init__(
                f"lock {key!r} is held by {owner} since {since} ({age_seconds:.0f}s ago), "
                f"but that process is no longer running: {reason} was interrupted",
                hint=f"`deployops resume {target}` takes the lock over and finishes it",
            )
        else:
            super().__init__(
                f"lock {key!r} is held by {owner} since {since} ({age_seconds:.0f}s ago): {reason}",
                hint="wait for it to finish (`deployops lock list` shows the holder); if its "
                f"host is gone, `deployops lock release {key} --force --reason '...'`",
            )
        self.key = key
        self.owner = owner
        self.reason = reason
        self.since = since
        self.age_seconds = age_seconds
        self.holder_dead = holder_dead
        self.deployment_id = deployment_id


class BackupError(DeployopsError):
    """A backup or restore failed."""


class RotationError(DeployopsError):
    """A secret rotation failed; the previous secret stays current."""
