"""Judging the artefacts a CI already writes (CHK-1): pure functions over their text.

Each evaluator takes the artefact's content and ``source`` (its path, for messages), and
returns an :class:`~deployops.domain.checklist.ItemVerdict` with its evidence, or raises
:class:`~deployops.domain.checklist.ArtefactError` when the artefact cannot be judged (empty,
malformed, of an unknown format, or about another project).

>>> xml = '<testsuite name="pytest" tests="1"><testcase name="t" classname="m"/></testsuite>'
>>> junit_verdict(xml, source="junit.xml").passed
True
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import PurePath
from typing import Any

from deployops.domain.checklist import ArtefactError, ItemVerdict

__all__ = [
    "Approval",
    "Finding",
    "Severity",
    "approvals_from_file",
    "approvals_from_github",
    "approvals_from_trailers",
    "approvals_verdict",
    "coverage_verdict",
    "junit_verdict",
    "lint_verdict",
    "security_findings",
    "security_verdict",
]

_MAX_LISTED = 10  # failed tests / findings named in the evidence


def _nonempty(text: str | bytes, *, item: str, source: str) -> str:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ArtefactError(
                "not UTF-8 text; point the item at the report file itself",
                item=item,
                source=source,
            ) from None
    if not text.strip():
        raise ArtefactError(
            "the file is empty; the step that writes it failed or did not run",
            item=item,
            source=source,
        )
    return text


def _xml(text: str | bytes, *, item: str, source: str, what: str) -> ET.Element:
    body = _nonempty(text, item=item, source=source)
    if "<!DOCTYPE" in body or "<!ENTITY" in body:
        raise ArtefactError(
            f"a {what} report has no DOCTYPE or entities; this file is not one",
            item=item,
            source=source,
        )
    try:
        return ET.fromstring(body)  # noqa: S314 - DOCTYPE and entities refused above
    except ET.ParseError as exc:
        line, col = exc.position
        raise ArtefactError(
            f"not well-formed XML at line {line}, column {col + 1} (truncated?); "
            f"write the {what} report again",
            item=item,
            source=source,
        ) from None


def _json(text: str | bytes, *, item: str, source: str, what: str) -> Any:
    body = _nonempty(text, item=item, source=source)
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ArtefactError(
            f"not valid JSON at line {exc.lineno}, column {exc.colno} (truncated?); "
            f"write the {what} report again",
            item=item,
            source=source,
        ) from None


# ---------------------------------------------------------------------- JUnit XML
def junit_verdict(
    text: str | bytes,
    *,
    source: str,
    item: str = "unit-tests",
    suite: str | None = None,
    exclude_suites: Sequence[str] = (),
) -> ItemVerdict:
    """All tests passed: at least one test ran, none failed or errored.

    ``suite`` counts only the ``<testsuite>`` of that name (pytest:
    ``-o junit_suite_name=e2e``); ``exclude_suites`` leaves suites out (the E2E suite when it
    shares the file with the unit tests)."""
    root = _xml(text, item=item, source=source, what="JUnit")
    if root.tag == "testsuites":
        suites = list(root.iter("testsuite"))
    elif root.tag == "testsuite":
        suites = [root]
    else:
        raise ArtefactError(
            f"not a JUnit report (root element <{root.tag}>, expected <testsuites> or "
            "<testsuite>); pytest writes one with --junitxml=PATH",
            item=item,
            source=source,
        )
    names = [s.get("name", "") for s in suites]
    if suite is not None:
        suites = [s for s in suites if s.get("name", "") == suite]
        if not suites:
            raise ArtefactError(
                f"no test suite named {suite!r} (suites: {', '.join(names) or 'none'}); "
                f"run it with -o junit_suite_name={suite} or fix the item's suite",
                item=item,
                source=source,
            )
    suites = [s for s in suites if s.get("name", "") not in exclude_suites]
    tests = failures = errors = skipped = 0
    failed: list[str] = []
    for s in suites:
        for case in s.iter("testcase"):
            tests += 1
            name = f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":")
            if case.find("failure") is not None:
                failures += 1
                failed.append(name)
            elif case.find("error") is not None:
                errors += 1
                failed.append(name)
            elif case.find("skipped") is not None:
                skipped += 1
    evidence = {
        "tests": tests,
        "failures": failures,
        "errors": errors,
        "skipped": skipped,
        "suites": [s.get("name", "") for s in suites],
        "failed": failed[:_MAX_LISTED],
    }
    if tests == 0:
        return ItemVerdict(item, False, "no tests ran", evidence, source)
    bad = failures + errors
    if bad:
        first = ", ".join(failed[:3]) + (" ..." if len(failed) > 3 else "")
        summary = f"{bad} of {tests} tests failed ({first})"
        return ItemVerdict(item, False, summary, evidence, source)
    summary = f"{tests} tests passed" + (f", {skipped} skipped" if skipped else "")
    return ItemVerdict(item, True, summary, evidence, source)


# ---------------------------------------------------------------------- coverage XML
def coverage_verdict(
    text: str | bytes,
    *,
    source: str,
    item: str = "coverage",
    threshold: float = 80.0,
    metric: str = "total",
    package: str | None = None,
    project_root: str | None = None,
) -> ItemVerdict:
    """Coverage at least ``threshold`` % from a Cobertura / coverage.py XML report.

    ``metric``: ``total`` (lines and branches together, as ``coverage report`` prints it),
    ``line`` or ``branch``. The report must be about this project: one of its packages or
    source folders is ``package``, or (without ``package``) one of its ``<source>`` folders
    lies under ``project_root``."""
    root = _xml(text, item=item, source=source, what="coverage")
    if root.tag != "coverage":
        raise ArtefactError(
            f"not a Cobertura / coverage.py report (root element <{root.tag}>); "
            "write one with `coverage xml` or pytest --cov-report=xml",
            item=item,
            source=source,
        )
    sources = [s.text.strip() for s in root.iter("source") if s.text and s.text.strip()]
    packages = [p.get("name", "") for p in root.iter("package")]
    _check_project(sources, packages, package, project_root, item=item, source=source)

    def num(name: str) -> float | None:
        value = root.get(name)
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            raise ArtefactError(
                f"attribute {name}={value!r} is not a number", item=item, source=source
            ) from None

    lines_valid, lines_covered = num("lines-valid"), num("lines-covered")
    br_valid, br_covered = num("branches-valid"), num("branches-covered")
    line_rate, branch_rate = num("line-rate"), num("branch-rate")
    if metric == "line":
        pct = _pct(lines_covered, lines_valid, line_rate)
    elif metric == "branch":
        pct = _pct(br_covered, br_valid, branch_rate)
    elif metric == "total":
        if lines_valid is not None and lines_covered is not None:
            valid = lines_valid + (br_valid or 0.0)
            covered = lines_covered + (br_covered or 0.0)
            pct = _pct(covered, valid, None)
        else:
            pct = _pct(None, None, line_rate)
    else:
        raise ArtefactError(
            f"unknown coverage metric {metric!r}; use total, line or branch",
            item=item,
            source=source,
        )
    if pct is None:
        raise ArtefactError(
            f"the report has no {metric} coverage figures (line-rate / lines-valid)",
            item=item,
            source=source,
        )
    evidence = {
        "percent": round(pct, 2),
        "threshold": threshold,
        "metric": metric,
        "lines_valid": lines_valid,
        "lines_covered": lines_covered,
        "branches_valid": br_valid,
        "branches_covered": br_covered,
        "sources": sources,
    }
    passed = pct >= threshold
    summary = f"{metric} coverage {pct:.1f} % ({'≥' if passed else '<'} {threshold:g} %)"
    return ItemVerdict(item, passed, summary, evidence, source)


def _pct(covered: float | None, valid: float | None, rate: float | None) -> float | None:
    if covered is not None and valid is not None:
        return 100.0 if valid == 0 else 100.0 * covered / valid
    if rate is not None:
        return 100.0 * rate
    return None


def _check_project(
    sources: Sequence[str],
    packages: Sequence[str],
    package: str | None,
    project_root: str | None,
    *,
    item: str,
    source: str,
) -> None:
    if package:
        tops = {p.split(".")[0] for p in packages} | {PurePath(s).name for s in sources}
        if package in tops:
            return
        raise ArtefactError(
            f"this coverage report is about {_about(sources, packages)}, not {package!r}: "
            "run coverage for this project, or correct checklist.pre.coverage.package",
            item=item,
            source=source,
        )
    if project_root is None or not sources:
        return
    root = PurePath(project_root)
    for s in sources:
        path = PurePath(s)
        if not path.is_absolute() or path == root or root in path.parents:
            return
    raise ArtefactError(
        f"this coverage report is about {_about(sources, packages)}, which is outside "
        f"{project_root}: run coverage for this project, or set "
        "checklist.pre.coverage.package when it was measured in another checkout",
        item=item,
        source=source,
    )


def _about(sources: Sequence[str], packages: Sequence[str]) -> str:
    if sources:
        return ", ".join(sources[:3])
    return "packages " + ", ".join(packages[:3])


# ---------------------------------------------------------------------- lint JSON
def lint_verdict(text: str | bytes, *, source: str, item: str = "lint") -> ItemVerdict:
    """No lint errors, from ``ruff check --output-format json`` (a list) or flake8's JSON
    formatter (a mapping of file to errors)."""
    data = _json(text, item=item, source=source, what="lint")
    errors: list[dict[str, Any]] = []
    if isinstance(data, list):
        tool = "ruff"
        for d in data:
            if not isinstance(d, dict) or "code" not in d or "filename" not in d:
                raise ArtefactError(
                    "a list, but not of ruff diagnostics (code, filename, location); "
                    "write it with `ruff check --output-format json`",
                    item=item,
                    source=source,
                )
            loc = d.get("location") or {}
            errors.append(
                {
                    "code": d.get("code") or "syntax",
                    "file": d["filename"],
                    "line": loc.get("row"),
                    "message": d.get("message", ""),
                }
            )
    elif isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        tool = "flake8"
        for filename, found in data.items():
            for d in found:
                if not isinstance(d, dict) or "code" not in d:
                    raise ArtefactError(
                        "a mapping, but not of flake8 errors (code, line_number, text)",
                        item=item,
                        source=source,
                    )
                errors.append(
                    {
                        "code": d["code"],
                        "file": d.get("filename", filename),
                        "line": d.get("line_number"),
                        "message": d.get("text", ""),
                    }
                )
    else:
        raise ArtefactError(
            "not a ruff or flake8 JSON report; write it with "
            "`ruff check --output-format json` or flake8 --format=json",
            item=item,
            source=source,
        )
    codes: dict[str, int] = {}
    for e in errors:
        codes[e["code"]] = codes.get(e["code"], 0) + 1
    evidence = {"tool": tool, "errors": len(errors), "codes": codes, "first": errors[:_MAX_LISTED]}
    if errors:
        first = errors[0]
        summary = (
            f"{len(errors)} lint errors ({tool}), first {first['code']} at "
            f"{first['file']}:{first['line']}"
        )
        return ItemVerdict(item, False, summary, evidence, source)
    return ItemVerdict(item, True, f"0 lint errors ({tool})", evidence, source)


# ---------------------------------------------------------------------- security scans
class Severity(IntEnum):
    UNKNOWN = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: object) -> Severity:
        if not isinstance(text, str):
            return cls.UNKNOWN
        return _SEVERITY_WORDS.get(text.strip().lower(), cls.UNKNOWN)


_SEVERITY_WORDS = {
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "moderate": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem a scanner reported."""

    tool: str
    id: str
    severity: Severity
    where: str = ""
    title: str = ""
    # Not checked at all (pip-audit's skip_reason): never a pass by default.
    unaudited: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "unaudited": self.unaudited,
            "tool": self.tool,
            "id": self.id,
            "severity": self.severity.name.lower(),
            "where": self.where,
            "title": self.title,
        }


_SARIF_VERSIONS = ("2.1.0",)


def security_findings(
    text: str | bytes, *, source: str, item: str = "security-scan"
) -> tuple[str, list[Finding]]:
    """``(tool, findings)`` from a SARIF 2.1.0, pip-audit, trivy or checkov JSON report (the
    format is recognised from its content)."""
    data = _json(text, item=item, source=source, what="security scan")
    if isinstance(data, dict) and ("runs" in data or "$schema" in data):
        return "sarif", _sarif(data, item=item, source=source)
    if isinstance(data, dict) and "dependencies" in data:
        return "pip-audit", _pip_audit(data["dependencies"], item=item, source=source)
    if isinstance(data, dict) and ("Results" in data or "SchemaVersion" in data):
        return "trivy", _trivy(data, item=item, source=source)
    if isinstance(data, dict) and "check_type" in data:
        return "checkov", _checkov([data], item=item, source=source)
    if isinstance(data, list) and data and all(isinstance(d, dict) for d in data):
        if all("check_type" in d for d in data):
            return "checkov", _checkov(data, item=item, source=source)
        if all("vulns" in d for d in data):
            return "pip-audit", _pip_audit(data, item=item, source=source)
    if isinstance(data, dict) and "summary" in data and "passed" in data.get("summary", {}):
        # checkov's output when a framework found nothing to scan
        return "checkov", []
    raise ArtefactError(
        "not a security report deployops reads: expected SARIF 2.1.0, pip-audit -f json, "
        "trivy --format json or checkov -o json",
        item=item,
        source=source,
    )


def _sarif(data: Mapping[str, Any], *, item: str, source: str) -> list[Finding]:
    schema = str(data.get("$schema", ""))
    version = str(data.get("version", ""))
    if version not in _SARIF_VERSIONS or (schema and "sarif" not in schema.lower()):
        raise ArtefactError(
            f"SARIF with an unknown schema (version {version or 'missing'!r}, "
            f"$schema {schema or 'missing'!r}); deployops reads SARIF 2.1.0",
            item=item,
            source=source,
        )
    runs = data.get("runs")
    if not isinstance(runs, list):
        raise ArtefactError("SARIF without a runs list", item=item, source=source)
    out: list[Finding] = []
    for run in runs:
        driver = (run.get("tool") or {}).get("driver") or {}
        tool = str(driver.get("name", "sarif"))
        rules = {str(r.get("id")): r for r in driver.get("rules") or [] if isinstance(r, dict)}
        for res in run.get("results") or []:
            rule_id = str(res.get("ruleId", ""))
            rule = rules.get(rule_id, {})
            sev = _sarif_severity(res, rule)
            loc = ""
            for location in res.get("locations") or []:
                phys = location.get("physicalLocation") or {}
                uri = (phys.get("artifactLocation") or {}).get("uri", "")
                line = (phys.get("region") or {}).get("startLine")
                loc = f"{uri}:{line}" if line else str(uri)
                break
            message = (res.get("message") or {}).get("text", "")
            out.append(Finding(tool, rule_id, sev, loc, str(message)[:200]))
    return out


def _sarif_severity(res: Mapping[str, Any], rule: Mapping[str, Any]) -> Severity:
    # GitHub code scanning's convention: properties.security-severity is a CVSS score
    # (critical >= 9.0, high >= 7.0, medium >= 4.0, low > 0); otherwise the result's level.
    for props in (res.get("properties") or {}, rule.get("properties") or {}):
        score = props.get("security-severity")
        if score is not None:
            try:
                value = float(score)
            except (TypeError, ValueError):
                continue
            if value >= 9.0:
                return Severity.CRITICAL
            if value >= 7.0:
                return Severity.HIGH
            if value >= 4.0:
                return Severity.MEDIUM
            return Severity.LOW
    level = res.get("level") or (rule.get("defaultConfiguration") or {}).get("level") or "warning"
    return {"error": Severity.HIGH, "warning": Severity.MEDIUM, "note": Severity.LOW}.get(
        str(level), Severity.LOW
    )


def _pip_audit(deps: Any, *, item: str, source: str) -> list[Finding]:
    if not isinstance(deps, list):
        raise ArtefactError(
            "pip-audit report whose dependencies is not a list", item=item, source=source
        )
    out: list[Finding] = []
    for dep in deps:
        if not isinstance(dep, dict):
            continue
        where = f"{dep.get('name', '?')} {dep.get('version', '')}".strip()
        if dep.get("skip_reason"):
            # e.g. the vulnerability service could not be reached, or a package not on the
            # index: pip-audit still exits 0 and says "No known vulnerabilities found".
            out.append(
                Finding(
                    "pip-audit",
                    "not-audited",
                    Severity.UNKNOWN,
                    where,
                    str(dep["skip_reason"])[:200],
                    unaudited=True,
                )
            )
        for v in dep.get("vulns") or []:
            # pip-audit reports no severity: UNKNOWN, judged by the unknown_severity setting.
            fixes = ", ".join(v.get("fix_versions") or []) or "no fix yet"
            out.append(
                Finding("pip-audit", str(v.get("id", "")), Severity.UNKNOWN, where, f"fix: {fixes}")
            )
    return out


def _trivy(data: Mapping[str, Any], *, item: str, source: str) -> list[Finding]:
    results = data.get("Results") or []
    if not isinstance(results, list):
        raise ArtefactError("trivy report whose Results is not a list", item=item, source=source)
    out: list[Finding] = []
    for r in results:
        target = str(r.get("Target", ""))
        for v in r.get("Vulnerabilities") or []:
            out.append(
                Finding(
                    "trivy",
                    str(v.get("VulnerabilityID", "")),
                    Severity.parse(v.get("Severity")),
                    f"{target} {v.get('PkgName', '')} {v.get('InstalledVersion', '')}".strip(),
                    str(v.get("Title", ""))[:200],
                )
            )
        for m in r.get("Misconfigurations") or []:
            if str(m.get("Status", "FAIL")).upper() != "FAIL":
                continue
            out.append(
                Finding(
                    "trivy",
                    str(m.get("ID", "")),
                    Severity.parse(m.get("Severity")),
                    target,
                    str(m.get("Title", ""))[:200],
                )
            )
    return out


def _checkov(reports: Iterable[Mapping[str, Any]], *, item: str, source: str) -> list[Finding]:
    out: list[Finding] = []
    for rep in reports:
        results = rep.get("results") or {}
        if not isinstance(results, dict):
            raise ArtefactError(
                "checkov report whose results is not a mapping", item=item, source=source
            )
        for c in results.get("failed_checks") or []:
            where = f"{c.get('file_path', '')}:{(c.get('file_line_range') or [''])[0]}"
            out.append(
                Finding(
                    "checkov",
                    str(c.get("check_id", "")),
                    Severity.parse(c.get("severity")),
                    f"{c.get('resource', '')} {where}".strip(),
                    str(c.get("check_name", ""))[:200],
                )
            )
    return out


def security_verdict(
    reports: Sequence[tuple[str, str, Sequence[Finding]]],
    *,
    item: str = "security-scan",
    max_critical: int = 0,
    max_high: int = 0,
    unknown_as: Severity = Severity.HIGH,
) -> ItemVerdict:
    """At most ``max_critical`` critical and ``max_high`` high findings over every report
    (``(source, tool, findings)``). A finding without a severity (pip-audit never gives one;
    checkov only with a platform key) counts as ``unknown_as``."""
    counts = {s.name.lower(): 0 for s in Severity if s is not Severity.UNKNOWN}
    blocking: list[Finding] = []
    unaudited: list[Finding] = []
    per_file: list[dict[str, Any]] = []
    for src, tool, findings in reports:
        per_file.append({"file": src, "tool": tool, "findings": len(findings)})
        for f in findings:
            if f.unaudited:
                unaudited.append(f)
                continue
            sev = f.severity if f.severity is not Severity.UNKNOWN else unknown_as
            if sev is Severity.UNKNOWN:
                continue
            counts[sev.name.lower()] += 1
            if sev >= Severity.HIGH:
                blocking.append(f)
    critical, high = counts["critical"], counts["high"]
    evidence = {
        "critical": critical,
        "high": high,
        "medium": counts["medium"],
        "low": counts["low"],
        "max_critical": max_critical,
        "max_high": max_high,
        "unknown_severity_counts_as": unknown_as.name.lower(),
        "reports": per_file,
        "blocking": [f.to_json() for f in blocking[:_MAX_LISTED]],
        "unaudited": [f.to_json() for f in unaudited[:_MAX_LISTED]],
    }
    passed = critical <= max_critical and high <= max_high and not unaudited
    summary = f"{critical} critical, {high} high, {counts['medium']} medium, {counts['low']} low"
    if unaudited:
        summary += f"; {len(unaudited)} not audited ({unaudited[0].where}: {unaudited[0].title})"
    if not passed and blocking:
        summary += f" (e.g. {blocking[0].id} in {blocking[0].where or blocking[0].tool})"
    sources = ", ".join(r[0] for r in reports)
    return ItemVerdict(item, passed, summary, evidence, sources)


# ---------------------------------------------------------------------- approvals
@dataclass(frozen=True, slots=True)
class Approval:
    by: str
    at: str = ""
    via: str = ""


def _same_person(a: str, b: str) -> bool:
    def key(s: str) -> set[str]:
        s = s.strip().lower()
        m = re.match(r"^(.*?)\s*<([^>]+)>$", s)
        return {m[1].strip(), m[2].strip()} - {""} if m else {s}

    return bool(key(a) & key(b))


def approvals_from_file(
    text: str | bytes, *, source: str, item: str = "code-review"
) -> tuple[str, list[Approval]]:
    """``(author, approvals)`` from an approvals file::

        {"author": "alice", "approvals": ["bob", {"by": "carol", "at": "2026-12-01T10:00Z"}]}

    An approval by the author is an error: nobody approves their own change."""
    data = _json(text, item=item, source=source, what="approvals")
    if not isinstance(data, dict) or not isinstance(data.get("approvals"), list):
        raise ArtefactError(
            'expected {"author": NAME, "approvals": [NAME or {"by": NAME, "at": TIME}, ...]}',
            item=item,
            source=source,
        )
    author = data.get("author")
    if not isinstance(author, str) or not author.strip():
        raise ArtefactError(
            'the approvals file names no author; add "author": the person who wrote the change',
            item=item,
            source=source,
        )
    out: list[Approval] = []
    for entry in data["approvals"]:
        if isinstance(entry, str):
            a = Approval(by=entry, via="file")
        elif isinstance(entry, dict) and isinstance(entry.get("by"), str):
            a = Approval(by=entry["by"], at=str(entry.get("at", "")), via="file")
        else:
            raise ArtefactError(
                f'approval {entry!r} is neither a name nor {{"by": NAME}}',
                item=item,
                source=source,
            )
        if _same_person(a.by, author):
            raise ArtefactError(
                f"{a.by!r} is the author of the change and cannot approve it; "
                "remove the entry and ask another reviewer",
                item=item,
                source=source,
            )
        out.append(a)
    return author, out


_TRAILER = re.compile(r"^(Approved-by|Reviewed-by|Acked-by):\s*(.+?)\s*$", re.I | re.M)


def approvals_from_trailers(
    message: str, *, author: str, source: str, item: str = "code-review"
) -> list[Approval]:
    """``Approved-by:`` / ``Reviewed-by:`` / ``Acked-by:`` trailers of a commit message. A
    trailer naming the commit's author is an error, as in an approvals file."""
    out: list[Approval] = []
    for m in _TRAILER.finditer(message):
        who = m[2]
        if _same_person(who, author):
            raise ArtefactError(
                f"the trailer '{m[1]}: {who}' names the commit's author, who cannot approve "
                "their own change",
                item=item,
                source=source,
            )
        out.append(Approval(by=who, via=m[1].lower()))
    return out


def approvals_from_github(
    pull: Mapping[str, Any], reviews: Sequence[Mapping[str, Any]]
) -> tuple[str, list[Approval], list[str]]:
    """``(author, approvals, changes_requested_by)`` from GitHub's pull request and its
    reviews (REST ``GET /repos/{o}/{r}/pulls/{n}`` and ``.../reviews``). Each reviewer's
    latest APPROVED / CHANGES_REQUESTED / DISMISSED review counts; comments do not change a
    state. The author's own reviews never count."""
    author = str((pull.get("user") or {}).get("login", ""))
    latest: dict[str, tuple[str, str]] = {}
    for r in reviews:
        who = str((r.get("user") or {}).get("login", ""))
        state = str(r.get("state", ""))
        if not who or who == author or state not in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            continue
        latest[who] = (state, str(r.get("submitted_at", "")))
    approvals = [
        Approval(by=w, at=at, via="github") for w, (s, at) in latest.items() if s == "APPROVED"
    ]
    blocked = [w for w, (s, _) in latest.items() if s == "CHANGES_REQUESTED"]
    return author, approvals, blocked


def approvals_verdict(
    approvals: Sequence[Approval],
    *,
    source: str,
    item: str = "code-review",
    minimum: int = 2,
    author: str = "",
    changes_requested: Sequence[str] = (),
) -> ItemVerdict:
    """At least ``minimum`` distinct approvers and no outstanding change request."""
    seen: dict[str, Approval] = {}
    for a in approvals:
        seen.setdefault(a.by.strip().lower(), a)
    distinct = list(seen.values())
    evidence = {
        "approvals": len(distinct),
        "minimum": minimum,
        "by": [a.by for a in distinct],
        "author": author,
        "changes_requested": list(changes_requested),
    }
    names = ", ".join(a.by for a in distinct) or "nobody"
    if changes_requested:
        summary = f"changes requested by {', '.join(changes_requested)} (approved by {names})"
        return ItemVerdict(item, False, summary, evidence, source)
    passed = len(distinct) >= minimum
    summary = f"{len(distinct)} of {minimum} approvals ({names})"
    return ItemVerdict(item, passed, summary, evidence, source)
