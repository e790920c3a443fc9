"""CHK-1: each automated pre-deploy item passes and fails as it should on real artefacts: a
real pytest run's JUnit XML, coverage.py's XML, ruff's JSON and SARIF, pip-audit's and
checkov's JSON, made from the small fixture project in ``artefacts.py``; broken, truncated or
foreign artefacts fail their item with the file and the reason."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployops.config.checklist import ChecklistItemConfig, ChecklistSettings
from deployops.domain.artefacts import (
    Severity,
    coverage_verdict,
    junit_verdict,
    lint_verdict,
    security_findings,
    security_verdict,
)
from deployops.domain.checklist import ArtefactError, ItemStatus, Stage
from deployops.engine.checklist import ChecklistGate
from integration.checklist.artefacts import (
    CHECKOV,
    make_checkov,
    make_e2e_junit,
    make_junit_and_coverage,
    make_pip_audit,
    make_ruff,
    write_project,
)

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Built:
    root: Path
    junit: Path
    coverage: Path
    e2e: Path
    lint: Path
    sarif: Path


def _build(folder: Path, **faults: bool) -> Built:
    write_project(folder, **faults)
    junit, cov = make_junit_and_coverage(folder)
    e2e = make_e2e_junit(folder)
    return Built(folder, junit, cov, e2e, make_ruff(folder), make_ruff(folder, "sarif"))


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return _build(tmp_path_factory.mktemp("good"))


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return _build(tmp_path_factory.mktemp("bad"), broken=True, untested=True, lint_error=True)


def _gate(root: Path, **pre: ChecklistItemConfig) -> ChecklistGate:
    settings = ChecklistSettings(pre=dict(pre))
    return ChecklistGate(items=settings.items(Stage.PRE), root=root)


def _verdict(gate: ChecklistGate, name: str):  # type: ignore[no-untyped-def]
    item = next(i for i in gate.items if i.name == name)
    return gate.judge(item)


# ---------------------------------------------------------------------- unit / e2e tests
def test_unit_tests_pass_on_a_green_pytest_run(good: Built) -> None:
    v = junit_verdict(good.junit.read_bytes(), source="reports/junit.xml")
    assert v.passed
    assert v.evidence["tests"] == 3
    assert v.evidence["failures"] == 0
    assert v.summary == "3 tests passed"


def test_unit_tests_fail_naming_the_failed_test(bad: Built) -> None:
    v = junit_verdict(bad.junit.read_bytes(), source="reports/junit.xml")
    assert not v.passed
    assert v.evidence["failures"] == 1
    assert v.evidence["failed"] == ["tests.test_broken::test_add_is_wrong"]
    assert "1 of 4 tests failed" in v.summary


def test_e2e_suite_is_judged_separately_by_its_name(good: Built, bad: Built) -> None:
    gate = _gate(good.root)
    assert _verdict(gate, "e2e-tests").passed
    # The E2E suite of the bad project passes: its unit tests' failure is not the E2E's.
    assert _verdict(_gate(bad.root), "e2e-tests").passed
    v = junit_verdict(good.e2e.read_bytes(), source="e2e.xml", suite="e2e", item="e2e-tests")
    assert v.passed
    assert v.evidence["suites"] == ["e2e"]
    # A suite name the report does not have is an error naming the suites it does have.
    with pytest.raises(ArtefactError) as err:
        junit_verdict(good.junit.read_bytes(), source="junit.xml", suite="e2e", item="e2e-tests")
    assert "no test suite named 'e2e'" in str(err.value)
    assert "pytest" in str(err.value)


# ---------------------------------------------------------------------- coverage
def test_coverage_of_the_project_meets_80_percent(good: Built) -> None:
    v = _verdict(_gate(good.root), "coverage")
    assert v.passed, v.summary
    assert v.evidence["percent"] >= 80
    assert v.evidence["branches_valid"] > 0  # coverage.py's total counts branches too


def test_coverage_below_80_percent_fails_with_the_figures(bad: Built) -> None:
    v = _verdict(_gate(bad.root), "coverage")
    assert not v.passed
    assert v.evidence["percent"] < 80
    assert "< 80 %" in v.summary


def test_a_coverage_report_of_another_project_is_refused(good: Built, tmp_path: Path) -> None:
    text = good.coverage.read_bytes()
    with pytest.raises(ArtefactError) as err:
        coverage_verdict(text, source="reports/coverage.xml", package="shop_api")
    assert "not 'shop_api'" in str(err.value)
    assert err.value.item == "coverage"
    with pytest.raises(ArtefactError) as err:
        coverage_verdict(text, source="reports/coverage.xml", project_root=str(tmp_path))
    assert "outside" in str(err.value)
    assert "checklist.pre.coverage.package" in str(err.value)
    # Measured in another checkout but about this package: accepted when package says so.
    assert coverage_verdict(
        text, source="reports/coverage.xml", package="calc", project_root=str(tmp_path)
    ).passed


# ---------------------------------------------------------------------- lint
def test_lint_passes_on_clean_code_and_fails_on_a_real_ruff_error(good: Built, bad: Built) -> None:
    assert good.lint.read_text().strip() == "[]"
    ok = _verdict(_gate(good.root), "lint")
    assert ok.passed
    assert ok.summary == "0 lint errors (ruff)"
    v = lint_verdict(bad.lint.read_bytes(), source="reports/lint.json")
    assert not v.passed
    assert v.evidence["codes"] == {"F401": 1}
    assert "F401 at" in v.summary
    assert "core.py:1" in v.summary


def test_flake8_json_is_read_too() -> None:
    report = {"calc/core.py": [{"code": "E501", "line_number": 3, "text": "line too long"}]}
    v = lint_verdict(json.dumps(report), source="flake8.json")
    assert not v.passed
    assert v.evidence["tool"] == "flake8"


# ---------------------------------------------------------------------- security scans
def test_sarif_findings_count_by_level_and_an_unknown_schema_is_refused(
    good: Built, bad: Built
) -> None:
    tool, clean = security_findings(good.sarif.read_bytes(), source="lint.sarif")
    assert tool == "sarif"
    assert clean == []
    _, found = security_findings(bad.sarif.read_bytes(), source="lint.sarif")
    assert [f.id for f in found] == ["F401"]
    v = security_verdict([("lint.sarif", "sarif", found)])
    assert not v.passed  # level error without a CVSS score counts as high
    data = json.loads(bad.sarif.read_text())
    data["version"] = "2.0.0"
    data["$schema"] = "https://example.com/sarif-2.0.0.json"
    with pytest.raises(ArtefactError) as err:
        security_findings(json.dumps(data), source="old.sarif")
    assert "unknown schema" in str(err.value)
    assert "2.1.0" in str(err.value)


def test_pip_audit_of_no_dependencies_passes_and_unaudited_ones_never_pass(
    tmp_path: Path,
) -> None:
    """Real pip-audit runs. Its vulnerability service may be out of reach here; then it marks
    the package "skip_reason" and still says "No known vulnerabilities found" — which must not
    pass the item."""
    out, run = make_pip_audit(tmp_path, "")
    assert out.is_file(), run.stderr
    tool, findings = security_findings(out.read_bytes(), source="pip-audit.json")
    assert tool == "pip-audit"
    assert security_verdict([("pip-audit.json", tool, findings)]).passed
    out, run = make_pip_audit(tmp_path, "requests==2.19.0\n")
    assert out.is_file(), run.stderr
    _, findings = security_findings(out.read_bytes(), source="pip-audit.json")
    v = security_verdict([("pip-audit.json", "pip-audit", findings)])
    # requests 2.19.0 has known vulnerabilities (CVE-2018-18074 among them): either pip-audit
    # reached its service and lists them, or it could not audit the package at all.
    assert not v.passed
    assert v.evidence["high"] >= 1 or v.evidence["unaudited"], v.summary


def test_pip_audit_vulnerabilities_count_as_high_from_a_recorded_report() -> None:
    """Recorded, not live: pip-audit's vulnerability service cannot be reached from this
    machine, so this report was written in the format pip-audit 2.x prints with ``-f json``
    for requests 2.19.0. pip-audit gives no severity; unknown counts as high by default."""
    text = (DATA / "pip-audit-requests-2.19.0.json").read_bytes()
    tool, findings = security_findings(text, source="pip-audit.json")
    assert tool == "pip-audit"
    assert {f.id for f in findings} >= {"PYSEC-2018-28"}
    v = security_verdict([("pip-audit.json", tool, findings)])
    assert not v.passed
    assert v.evidence["high"] == len(findings)
    assert v.evidence["unknown_severity_counts_as"] == "high"
    lenient = security_verdict([("pip-audit.json", tool, findings)], unknown_as=Severity.MEDIUM)
    assert lenient.passed


def test_trivy_critical_and_high_fail_from_a_recorded_report() -> None:
    """Recorded: trivy is not installed here; the report is in the format of
    ``trivy image --format json`` (SchemaVersion 2)."""
    text = (DATA / "trivy-image.json").read_bytes()
    tool, findings = security_findings(text, source="trivy.json")
    assert tool == "trivy"
    v = security_verdict([("trivy.json", tool, findings)])
    assert not v.passed
    assert (v.evidence["critical"], v.evidence["high"], v.evidence["medium"]) == (1, 1, 1)
    assert "CVE-2023-" in v.summary


@pytest.mark.slow
def test_checkov_scan_passes_a_private_bucket_and_fails_a_public_one(tmp_path: Path) -> None:
    if not CHECKOV.is_file():
        pytest.fail("checkov is missing: run `make .venv-checkov`", pytrace=False)
    root = tmp_path
    (root / "reports").mkdir()
    make_checkov(root, public=False)
    gate = _gate(root)
    v = _verdict(gate, "security-scan")
    assert v.passed, v.summary
    assert v.evidence["reports"][0]["tool"] == "checkov"
    make_checkov(root, public=True)
    v = _verdict(gate, "security-scan")
    assert not v.passed
    assert v.evidence["blocking"][0]["id"] == "CKV_AWS_20"
    assert "CKV_AWS_20" in v.summary


# ---------------------------------------------------------------------- broken artefacts
def test_missing_empty_and_truncated_reports_fail_their_item_naming_the_file(
    good: Built, tmp_path: Path
) -> None:
    root = tmp_path
    (root / "reports").mkdir()
    gate = _gate(root)
    v = _verdict(gate, "unit-tests")
    assert not v.passed
    assert v.summary.startswith("reports/junit.xml: does not exist")
    assert "checklist.pre.unit-tests.file" in v.summary
    (root / "reports" / "junit.xml").write_text("")
    assert "is empty" in _verdict(gate, "unit-tests").summary
    text = good.junit.read_text()
    (root / "reports" / "junit.xml").write_text(text[: len(text) // 2])
    v = _verdict(gate, "unit-tests")
    assert not v.passed
    assert "reports/junit.xml: not well-formed XML at line" in v.summary
    assert "truncated" in v.summary
    shutil.copy(good.coverage, root / "reports" / "coverage.xml")
    (root / "reports" / "coverage.xml").write_text(good.junit.read_text())
    assert "not a Cobertura" in _verdict(gate, "coverage").summary
    v = _verdict(gate, "security-scan")
    assert "no security report found" in v.summary


def test_the_pre_gate_of_a_green_build_waits_only_for_its_sign_offs(good: Built) -> None:
    (good.root / "reports" / "security").mkdir(exist_ok=True)
    shutil.copy(good.sarif, good.root / "reports" / "security" / "ruff.sarif")
    (good.root / "reports" / "approvals.json").write_text(
        json.dumps({"author": "alice", "approvals": ["bob", "carol"]})
    )
    gate = _gate(good.root)
    outcome = gate.pre_gate([])
    states = {s.name: s.status for s in outcome.items}
    automated = ["unit-tests", "coverage", "e2e-tests", "lint", "security-scan", "code-review"]
    assert all(states[n] is ItemStatus.PASSED for n in automated), outcome.to_json()
    assert [s.name for s in gate.blocking(outcome)] == [
        "migration-plan",
        "rollback-plan",
        "capacity-check",
        "on-call",
    ]
    assert states["architecture-review"] is ItemStatus.NOT_REQUIRED
    assert states["deployment-notice"] is ItemStatus.PENDING
