"""Checkov finds no unexplained problem in ``infrastructure/`` (IAC-1).

Checkov runs from its own virtualenv, ``.venv-checkov`` (its pins clash with the project's).
Every check the code does not satisfy is skipped inline with
``#checkov:skip=CKV_...:<reason>``; a skip without a reason fails this test too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infrastructure"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
_SKIP = re.compile(r"#\s*checkov:skip=(?P<id>[A-Z0-9_]+)(?::(?P<reason>.*))?$")

pytestmark = pytest.mark.integration


# Cached: one scan serves both tests (a failure is not cached and is reported by each).
@cache
def _run_checkov() -> dict[str, Any]:
    if not CHECKOV.is_file():
        pytest.fail(
            f"{CHECKOV.relative_to(ROOT)} is missing: run `make .venv-checkov` to install checkov "
            "into its own virtualenv, then run the tests again",
            pytrace=False,
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "PRISMA_"))}
    env["CHECKOV_RUN_SCA_PACKAGE_SCAN_V2"] = "false"
    # Not --quiet: it drops the skipped checks from the report, and those are checked below.
    proc = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(INFRA),
            "--framework",
            "terraform",
            "--output",
            "json",
            "--skip-download",
            "--soft-fail",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, f"checkov failed to run:\n{proc.stderr[-4000:]}"
    report: Any = json.loads(proc.stdout)
    # One framework gives an object; several give a list of them.
    reports = report if isinstance(report, list) else [report]
    terraform = [r for r in reports if r.get("check_type") == "terraform"]
    assert len(terraform) == 1, f"no terraform results in checkov output: {proc.stdout[:2000]}"
    result: dict[str, Any] = terraform[0]
    return result


def test_iac1_checkov_finds_no_failed_checks() -> None:
    """IAC-1: zero failed checkov checks; the module is scanned, not silently empty."""
    checkov_report = _run_checkov()
    summary = checkov_report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
        for c in checkov_report["results"]["failed_checks"]
    ]
    assert failed == [], "checkov failed checks:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100


def test_iac1_checkov_skips_are_all_explained() -> None:
    """IAC-1: every skip is an inline comment with a reason, and checkov honoured each one."""
    checkov_report = _run_checkov()
    comments: list[tuple[str, str]] = []
    for path in sorted(INFRA.rglob("*.tf")):
        for line in path.read_text(encoding="utf-8").splitlines():
            m = _SKIP.search(line.strip())
            if m:
                comments.append((m["id"], (m["reason"] or "").strip()))
    unexplained = [check for check, reason in comments if len(reason) < 20]
    assert unexplained == [], f"skips need a reason: {unexplained}"
    skipped = checkov_report["results"]["skipped_checks"]
    assert skipped, "expected the documented skips to show up in the report"
    honoured = {c["check_id"] for c in skipped}
    assert {check for check, _ in comments} <= honoured
    for check in skipped:
        assert check["check_result"].get("suppress_comment"), check["check_id"]
