"""A commit's author and message from git (CHK-1 approvals from ``Approved-by:`` trailers)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from deployops.errors import DriverError

__all__ = ["commit_author_and_message"]


def commit_author_and_message(root: Path, ref: str = "HEAD") -> tuple[str, str]:
    """``("Name <email>", message)`` of ``ref`` in the repository at ``root``."""
    if ref.startswith("-"):
        raise DriverError("git", "read commit", f"{ref!r} is not a commit reference")
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%an <%ae>%x00%B", ref, "--"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DriverError("git", "read commit", type(exc).__name__) from exc
    if out.returncode != 0:
        raise DriverError(
            "git",
            "read commit",
            out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "git log failed",
            hint="work inside the git repository of the release, or set "
            f"checklist.pre.code-review.git_ref (now {ref!r})",
        )
    author, _, message = out.stdout.partition("\x00")
    return author.strip(), message
