"""The checklist's pure parts (CHK-1..CHK-3): gates judged from verdicts and sign-offs, and the
evaluators' answers to bad input."""

from __future__ import annotations

import json

import pytest

from deployops.domain.artefacts import (
    approvals_from_file,
    coverage_verdict,
    junit_verdict,
    lint_verdict,
    security_findings,
)
from deployops.domain.checklist import (
    ArtefactError,
    ItemStatus,
    ItemVerdict,
    OnFailure,
    Stage,
    judge_gate,
)


def test_chk1_gate_shuts_on_a_failed_item_or_a_missing_required_sign_off() -> None:
    ok = ItemVerdict("lint", True, "0 lint errors")
    bad = ItemVerdict("unit-tests", False, "1 of 3 tests failed")
    gate = judge_gate(
        Stage.PRE,
        [ok, bad],
        manual=[("rollback-plan", True), ("architecture-review", False), ("on-call", True)],
        signed={"on-call": ("alice", "")},
    )
    assert not gate.passed
    assert [s.name for s in gate.failing] == ["unit-tests", "rollback-plan"]
    states = {s.name: s.status for s in gate.items}
    assert states["architecture-review"] is ItemStatus.NOT_REQUIRED
    assert states["on-call"] is ItemStatus.SIGNED


def test_overrides_and_warn_items_let_the_gate_open_and_say_so() -> None:
    gate = judge_gate(
        Stage.PRE,
        [ItemVerdict("unit-tests", False, "1 failed"), ItemVerdict("lint", False, "2 errors")],
        manual=[("rollback-plan", True)],
        overrides={"unit-tests": ("erin", "quarantined"), "rollback-plan": ("erin", "hotfix")},
        actions={"lint": OnFailure.WARN},
    )
    assert gate.passed
    states = {s.name: (s.status, s.by, s.note) for s in gate.items}
    assert states["unit-tests"] == (ItemStatus.OVERRIDDEN, "erin", "quarantined")
    assert states["lint"][0] is ItemStatus.WARNED
    assert states["rollback-plan"][0] is ItemStatus.OVERRIDDEN
    assert gate.to_json()["failing"] == []


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("<testsuite><testcase", "not well-formed XML at line 1"),
        ("<html></html>", "not a JUnit report"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><testsuite/>', "no DOCTYPE"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_junit_bad_input_names_the_file_and_item(text: str | bytes, needle: str) -> None:
    with pytest.raises(ArtefactError) as err:
        junit_verdict(text, source="reports/junit.xml")
    assert needle in str(err.value)
    assert str(err.value).startswith("unit-tests: reports/junit.xml: ")


def test_a_junit_report_without_tests_fails() -> None:
    v = junit_verdict('<testsuite name="pytest" tests="0"/>', source="j.xml")
    assert not v.passed
    assert v.summary == "no tests ran"


def test_coverage_metrics() -> None:
    xml = (
        '<coverage line-rate="0.9" branch-rate="0.5" lines-valid="100" lines-covered="90" '
        'branches-valid="20" branches-covered="10"><sources><source>/src</source></sources>'
        "</coverage>"
    )
    assert coverage_verdict(xml, source="c.xml", metric="line").evidence["percent"] == 90.0
    assert coverage_verdict(xml, source="c.xml", metric="branch").evidence["percent"] == 50.0
    total = coverage_verdict(xml, source="c.xml")
    assert total.evidence["percent"] == 83.33
    assert total.passed
    with pytest.raises(ArtefactError, match="no total coverage figures"):
        coverage_verdict("<coverage/>", source="c.xml")


def test_lint_and_security_reports_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(ArtefactError, match="not a ruff or flake8 JSON report"):
        lint_verdict('{"a": 1}', source="l.json")
    with pytest.raises(ArtefactError, match="not valid JSON at line 1"):
        lint_verdict('[{"code": "F401"', source="l.json")
    with pytest.raises(ArtefactError, match="not a security report"):
        security_findings('{"hello": []}', source="s.json")
    with pytest.raises(ArtefactError, match="unknown schema"):
        security_findings('{"version": "1.0", "runs": []}', source="s.sarif")


def test_sarif_security_severity_scores_decide_the_level() -> None:
    doc = {
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "trivy",
                        "rules": [{"id": "R1", "properties": {"security-severity": "9.8"}}],
                    }
                },
                "results": [
                    {"ruleId": "R1", "level": "warning", "message": {"text": "x"}},
                    {"ruleId": "R2", "level": "note", "properties": {"security-severity": "7.5"}},
                    {"ruleId": "R3", "level": "note"},
                ],
            }
        ],
    }
    _, found = security_findings(json.dumps(doc), source="t.sarif")
    assert [f.severity.name for f in found] == ["CRITICAL", "HIGH", "LOW"]


def test_approvals_file_entries_must_be_names() -> None:
    with pytest.raises(ArtefactError, match="neither a name"):
        approvals_from_file('{"author": "a", "approvals": [3]}', source="a.json")
    author, found = approvals_from_file(
        '{"author": "Alice <alice@x.org>", "approvals": ["bob", {"by": "carol", "at": "t"}]}',
        source="a.json",
    )
    assert author == "Alice <alice@x.org>"
    assert [a.by for a in found] == ["bob", "carol"]
    with pytest.raises(ArtefactError, match="is the author"):
        approvals_from_file(
            '{"author": "Alice <alice@x.org>", "approvals": ["alice@x.org"]}', source="a.json"
        )
