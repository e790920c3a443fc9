"""The post-deploy checks (CHK-3) and the completion report.

After a deployment succeeds: smoke checks of the key endpoints through the production
listener, database connectivity, external API checks, the error logs and the performance of
the new version watched for their windows (the guide's 15 and 30 minutes by default), then the
completion report — Markdown and HTML — with every gate's items, their evidence and who signed
them, incidents, lessons and hand-over notes.

    checks = PostChecks(items=settings.items(Stage.POST), prober=..., metrics=..., clock=...,
                        prod_url="http://127.0.0.1:8080", scope="web-green")
    verdicts = checks.run(progress=print)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from deployops.clock import Clock
from deployops.config.checklist import ResolvedItem
from deployops.domain.checklist import Check, GateOutcome, ItemVerdict
from deployops.domain.model import MetricName, MetricQuery, Statistic
from deployops.ports import Metrics, Prober
from deployops.store import ChecklistEntry, DeploymentRecord

__all__ = ["PostChecks", "render_completion_report", "report_paths", "scan_log_lines"]

# (ok, detail) of one connection attempt to the application's database.
DatabaseCheck = Callable[[], tuple[bool, str]]
# Log lines written by the new version since the watch began: (file, line).
ReadLogs = Callable[[], Sequence[tuple[str, str]]]
Progress = Callable[[str, float], None]


@dataclass
class PostChecks:
    """CHK-3's automated items for one deployment."""

    items: Sequence[ResolvedItem]
    prober: Prober
    metrics: Metrics
    clock: Clock
    prod_url: str
    scope: str
    smoke_default: Sequence[tuple[str, int]] = (("/health", 200),)
    database: DatabaseCheck | None = None
    read_logs: ReadLogs | None = None
    max_error_rate: float = 1.0  # CHK-2's limits: the watched version must stay within them
    max_p99_ms: float = 500.0
    period_s: int = 60

    def _item(self, check: Check) -> ResolvedItem | None:
        return next((i for i in self.items if i.check is check), None)

    def run(self, progress: Progress | None = None) -> list[ItemVerdict]:
        """Every automated post item: the instant checks first, then the watched windows."""
        out: list[ItemVerdict] = []
        if (it := self._item(Check.SMOKE)) is not None:
            out.append(self.smoke(it))
        if (it := self._item(Check.DATABASE)) is not None:
            out.append(self.database_check(it))
        if (it := self._item(Check.HTTP)) is not None:
            out.append(self.external(it))
        logs, perf = self._item(Check.LOGS), self._item(Check.PERFORMANCE)
        if logs is not None or perf is not None:
            out += self.watch(logs, perf, progress)
        return out

    # ------------------------------------------------------------------ instant checks
    def smoke(self, item: ResolvedItem) -> ItemVerdict:
        paths = item.options.get("paths")
        checks = [(p, 200) for p in paths] if paths else list(self.smoke_default)
        results = []
        bad = []
        for path, expected in checks:
            res = self.prober.get(f"{self.prod_url}{path}", timeout_s=5.0)
            results.append(
                {
                    "path": path,
                    "status": res.status,
                    "expected": expected,
                    "ms": round(res.elapsed_ms, 1),
                }
            )
            if res.status != expected:
                bad.append(f"{path} answered {res.status or res.error}, expected {expected}")
        evidence = {"checks": results, "listener": self.prod_url}
        if bad:
            return ItemVerdict(item.name, False, "; ".join(bad), evidence, self.prod_url)
        summary = f"{len(results)} endpoints answered as expected"
        return ItemVerdict(item.name, True, summary, evidence, self.prod_url)

    def database_check(self, item: ResolvedItem) -> ItemVerdict:
        if self.database is None:
            return ItemVerdict(
                item.name,
                False,
                "no database to check: set checklist.post.database.dsn (or the environment's "
                "local.database_dsn), or disable the item",
                {"configured": False},
            )
        ok, detail = self.database()
        return ItemVerdict(item.name, ok, detail, {"detail": detail})

    def external(self, item: ResolvedItem) -> ItemVerdict:
        urls = list(item.options.get("urls") or [])
        if not urls:
            return ItemVerdict(
                item.name,
                True,
                "no external APIs configured (checklist.post.external-apis.urls)",
                {"urls": []},
            )
        results = []
        bad = []
        for url in urls:
            res = self.prober.get(url, timeout_s=10.0)
            results.append({"url": url, "status": res.status, "error": res.error})
            if not 200 <= res.status < 400:
                bad.append(f"{url} answered {res.status or res.error}")
        evidence = {"checks": results}
        if bad:
            return ItemVerdict(item.name, False, "; ".join(bad), evidence)
        return ItemVerdict(item.name, True, f"{len(urls)} external APIs reachable", evidence)

    # ------------------------------------------------------------------ watched windows
    def watch(
        self,
        logs: ResolvedItem | None,
        perf: ResolvedItem | None,
        progress: Progress | None,
    ) -> list[ItemVerdict]:
        """Watch both windows at once (they start together); each is judged at its end."""
        began = self.clock.now()
        mono = self.clock.monotonic()
        windows = {it.name: float(it.options["duration"]) for it in (logs, perf) if it is not None}
        longest = max(windows.values())
        out: dict[str, ItemVerdict] = {}
        while True:
            elapsed = self.clock.monotonic() - mono
            for it in (logs, perf):
                if it is None or it.name in out or elapsed < windows[it.name]:
                    continue
                end = began + timedelta(seconds=windows[it.name])
                out[it.name] = (
                    self._logs(it, began, end) if it is logs else self._perf(it, began, end)
                )
            if len(out) == len(windows):
                break
            left = longest - elapsed
            if progress is not None:
                progress(f"watching {self.scope} after the deploy", left)
            next_end = min(w for n, w in windows.items() if n not in out)
            self.clock.sleep(max(0.05, min(5.0, next_end - elapsed)))
        return [out[n] for n in windows]

    def _sum(self, metric: MetricName, stat: Statistic, start: datetime, end: datetime) -> Any:
        period = max(1, min(self.period_s, math.ceil((end - start).total_seconds())))
        return self.metrics.query(
            MetricQuery(
                metric=metric,
                scope=self.scope,
                statistic=stat,
                start=start,
                end=end,
                period_s=period,
            )
        )

    def _logs(self, item: ResolvedItem, start: datetime, end: datetime) -> ItemVerdict:
        errors = self._sum(MetricName.HTTP_5XX, Statistic.SUM, start, end)
        patterns = [str(p) for p in item.options.get("patterns") or []]
        ignore = [str(p) for p in item.options.get("ignore") or []]
        lines = list(self.read_logs()) if self.read_logs is not None else []
        matched = scan_log_lines(lines, patterns=patterns, ignore=ignore)
        minutes = (end - start).total_seconds() / 60
        evidence: dict[str, Any] = {
            "window_s": (end - start).total_seconds(),
            "patterns": patterns,
            "ignored": ignore,
            "log_lines_scanned": len(lines),
            "matched": [{"file": f, "line": line[:300]} for f, line in matched[:10]],
            "logs_read": self.read_logs is not None,
        }
        if not errors.ok:
            evidence["error"] = errors.error
            return ItemVerdict(
                item.name, False, f"5xx count unavailable: {errors.error}", evidence, self.scope
            )
        count = sum(d.value for d in errors.datapoints)
        evidence["http_5xx"] = count
        threshold = float(item.options.get("threshold", 0.0))
        passed = count <= threshold and not matched
        summary = f"{count:g} 5xx answers and {len(matched)} error log lines in {minutes:g} min"
        return ItemVerdict(item.name, passed, summary, evidence, self.scope)

    def _perf(self, item: ResolvedItem, start: datetime, end: datetime) -> ItemVerdict:
        rate = self._sum(MetricName.ERROR_RATE, Statistic.AVERAGE, start, end)
        p99 = self._sum(MetricName.RESPONSE_TIME, Statistic.P99, start, end)
        minutes = (end - start).total_seconds() / 60
        evidence: dict[str, Any] = {
            "window_s": (end - start).total_seconds(),
            "max_error_rate": self.max_error_rate,
            "max_p99_ms": self.max_p99_ms,
        }
        problems = [m.error for m in (rate, p99) if not m.ok]
        if problems:
            evidence["error"] = problems[0]
            return ItemVerdict(
                item.name, False, f"metrics unavailable: {problems[0]}", evidence, self.scope
            )
        rates = [d.value for d in rate.datapoints]
        p99s = [d.value for d in p99.datapoints]
        if not rates or not p99s:
            # No verdict without data (CONVENTIONS 16): a silent window is not a good one.
            evidence["datapoints"] = {"error_rate": len(rates), "p99": len(p99s)}
            return ItemVerdict(
                item.name,
                False,
                f"no requests measured in {minutes:g} min: nothing to judge",
                evidence,
                self.scope,
            )
        worst_rate, worst_p99 = max(rates), max(p99s)
        evidence.update(worst_error_rate=round(worst_rate, 3), worst_p99_ms=round(worst_p99, 1))
        passed = worst_rate < self.max_error_rate and worst_p99 < self.max_p99_ms
        summary = (
            f"worst error rate {worst_rate:.2f} % (limit {self.max_error_rate:g} %), worst P99 "
            f"{worst_p99:.0f} ms (limit {self.max_p99_ms:g} ms) over {minutes:g} min"
        )
        return ItemVerdict(item.name, passed, summary, evidence, self.scope)


def scan_log_lines(
    lines: Sequence[tuple[str, str]], *, patterns: Sequence[str], ignore: Sequence[str]
) -> list[tuple[str, str]]:
    """The error lines among ``(file, line)``: a line containing a pattern, or a Python
    traceback (reported by its last line, the exception). A line or a traceback whose exception
    contains an ``ignore`` text (a client that hung up: ``ConnectionResetError``) is left out.

    >>> scan_log_lines([("a", "Traceback (most recent call last):"), ("a", "  x"),
    ...                 ("a", "ValueError: bad")], patterns=["Traceback"], ignore=[])
    [('a', 'ValueError: bad')]
    """
    out: list[tuple[str, str]] = []
    in_traceback: str | None = None  # the file of the traceback being read
    for file, line in lines:
        if in_traceback is not None:
            if in_traceback == file and (line.startswith((" ", "\t")) or not line.strip()):
                continue
            in_traceback = None
            if not any(i in line for i in ignore):
                out.append((file, line))
            continue
        if line.startswith("Traceback (most recent call last)"):
            if "Traceback" in patterns:
                in_traceback = file
            continue
        if any(p in line for p in patterns) and not any(i in line for i in ignore):
            out.append((file, line))
    return out


# ---------------------------------------------------------------------- the report
def report_paths(reports_dir: Path, deployment_id: str) -> tuple[Path, Path]:
    """Where a deployment's completion report lives (Markdown, HTML)."""
    return (
        reports_dir / f"{deployment_id}-completion.md",
        reports_dir / f"{deployment_id}-completion.html",
    )


_TEMPLATES = Path(__file__).parent / "templates"


def render_completion_report(
    rec: DeploymentRecord,
    *,
    steps: Sequence[Any],
    gates: Sequence[GateOutcome],
    incidents: Sequence[Any],
    notes: Sequence[ChecklistEntry],
    final: bool,
    generated_at: datetime,
) -> tuple[str, str]:
    """The completion report as (Markdown, HTML). HTML escapes everything it shows."""
    from jinja2 import Environment

    context: Mapping[str, Any] = {
        "rec": rec,
        "steps": steps,
        "gates": gates,
        "incidents": incidents,
        "lessons": [n for n in notes if n.item == "lessons"],
        "handover": [n for n in notes if n.item == "handover"],
        "final": final,
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "titles": {
            "pre": "Before the deploy",
            "during": "During the deploy",
            "post": "After the deploy",
        },
    }
    md = Environment(autoescape=False, keep_trailing_newline=True)  # noqa: S701 - Markdown
    md.filters["cell"] = _cell
    html = Environment(autoescape=True, keep_trailing_newline=True)
    return (
        md.from_string((_TEMPLATES / "completion.md.j2").read_text("utf-8")).render(**context),
        html.from_string((_TEMPLATES / "completion.html.j2").read_text("utf-8")).render(**context),
    )


def _cell(text: object) -> str:
    """A Markdown table cell: no line breaks, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")
