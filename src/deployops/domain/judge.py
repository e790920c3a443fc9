"""The statistical judge: compare the new colour (canary) with the old (baseline) over one window.

Pure: no I/O and no clock reads. Each colour's window is a request count, an error count and
the latency samples (seconds) of the same period; a :class:`JudgePolicy` says, per metric, which
way is bad, how many samples it needs, how large a change must be to matter and how much it
weighs. The tests are scipy's (no statistics are written here):

- ``error_rate``: Fisher's exact test on the 2×2 table (errors, successes) × (canary, baseline),
  one-sided in the bad direction (``scipy.stats.fisher_exact``);
- ``latency``: the Mann–Whitney U test, one-sided (``scipy.stats.mannwhitneyu``), as Kayenta's
  NetflixACAJudge; the effect is the ratio of the means (Kayenta's ``meanRatio``);
- ``latency_spread``: the Brown–Forsythe variant of Levene's test (``scipy.stats.levene`` with
  ``center="median"``, robust to skewed latencies); Levene's test is two-sided, so the direction
  is read from the ratio of the standard deviations.

A metric fails when its change is significant at the policy's confidence (default 98 %, as
NetflixACAJudge) *and* at least every effect-size floor it sets (relative and/or absolute), in
its bad direction. A colour with fewer samples than the metric's minimum gives ``NO_DATA``, which
never passes (unless the policy says ``no_data_passes``): the verdict is then Marginal at best.

The score is the weighted share of passing metrics (0–100); ``score >= pass_score`` is Pass,
``score >= marginal_score`` Marginal, below that Fail; a failing critical metric fails the whole
judgement whatever the score.

>>> base = ColourWindow(500, 1, (0.1,) * 500)
>>> bad = ColourWindow(500, 15, (0.1,) * 500)
>>> j = judge(base, bad, JudgePolicy())
>>> j.verdict
<JudgeVerdict.FAIL: 'fail'>
>>> j.metric("error_rate").reason
'error rate 3.0 % vs 0.2 % (p=0.0002, +2.8 pp ≥ floor 1 pp)'
>>> judge(base, base, JudgePolicy()).verdict
<JudgeVerdict.PASS: 'pass'>
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ColourWindow",
    "Direction",
    "JudgeMetric",
    "JudgePolicy",
    "JudgeVerdict",
    "Judgement",
    "MetricJudgement",
    "MetricOutcome",
    "MetricPolicy",
    "default_metric_policies",
    "judge",
    "validate_judge_policy",
]


class JudgeVerdict(StrEnum):
    """The outcome of one comparison (Kayenta's Pass / Marginal / Fail)."""

    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    MARGINAL = "marginal"
    FAIL = "fail"


class JudgeMetric(StrEnum):
    ERROR_RATE = "error_rate"
    LATENCY = "latency"
    LATENCY_SPREAD = "latency_spread"


class Direction(StrEnum):
    """Which way of change is bad."""

    INCREASE = "increase"  # higher is worse (errors, latency)
    DECREASE = "decrease"  # lower is worse (e.g. a throughput)
    EITHER = "either"  # any change is suspect


class MetricOutcome(StrEnum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    FAIL = "fail"
    NO_DATA = "no_data"  # too few samples in a colour: not judged, never a pass by default


@dataclass(frozen=True, slots=True)
class ColourWindow:
    """What one colour served in the window: requests, errors, latency samples (seconds).

    >>> ColourWindow(10, 1, [0.2, 0.3]).latencies
    (0.2, 0.3)
    """

    requests: int
    errors: int
    latencies: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.requests < 0 or self.errors < 0:
            raise ValueError(
                f"requests and errors must be 0 or more, not {self.requests}/{self.errors}"
            )
        if self.errors > self.requests:
            raise ValueError(f"{self.errors} errors out of {self.requests} requests")
        lat = tuple(float(v) for v in self.latencies)
        if any(not math.isfinite(v) or v < 0 for v in lat):
            raise ValueError("latency samples must be finite seconds, 0 or more")
        object.__setattr__(self, "latencies", lat)

    @property
    def error_rate(self) -> float:
        """Errors per request, 0..1 (0 without requests)."""
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricPolicy:
    """How one metric is judged.

    ``min_effect_absolute`` is in the metric's unit: percentage points for ``error_rate``,
    seconds for ``latency`` (mean) and ``latency_spread`` (standard deviation);
    ``min_effect_relative`` is a fraction of the baseline (0.10 = +10 %). A change fails only if
    it reaches every floor that is set; with none set, any significant change in the bad
    direction fails. ``min_samples`` is per colour (requests for the error rate, latency samples
    for the others).
    """

    metric: JudgeMetric
    direction: Direction = Direction.INCREASE
    min_samples: int = 50
    min_effect_relative: float | None = None
    min_effect_absolute: float | None = None
    critical: bool = False
    weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric.value,
            "direction": self.direction.value,
            "min_samples": self.min_samples,
            "min_effect_relative": self.min_effect_relative,
            "min_effect_absolute": self.min_effect_absolute,
            "critical": self.critical,
            "weight": self.weight,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricPolicy:
        return cls(
            metric=JudgeMetric(data["metric"]),
            direction=Direction(data.get("direction", "increase")),
            min_samples=int(data.get("min_samples", 50)),
            min_effect_relative=data.get("min_effect_relative"),
            min_effect_absolute=data.get("min_effect_absolute"),
            critical=bool(data.get("critical", False)),
            weight=float(data.get("weight", 1.0)),
        )


def default_metric_policies() -> tuple[MetricPolicy, ...]:
    """The defaults: error rate +1 percentage point (critical), mean latency +10 % and 5 ms,
    latency spread +50 % and 5 ms; errors and latency weigh twice the spread."""
    return (
        MetricPolicy(
            metric=JudgeMetric.ERROR_RATE,
            min_samples=100,
            min_effect_absolute=1.0,
            critical=True,
            weight=2.0,
        ),
        # and at least 5 ms: a service answering in 1 ms is not failed for 0.3 ms more
        MetricPolicy(
            metric=JudgeMetric.LATENCY,
            min_samples=50,
            min_effect_relative=0.10,
            min_effect_absolute=0.005,
            weight=2.0,
        ),
        MetricPolicy(
            metric=JudgeMetric.LATENCY_SPREAD,
            min_samples=50,
            min_effect_relative=0.50,
            min_effect_absolute=0.005,
            weight=1.0,
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgePolicy:
    """What a comparison judges and how it is scored (Kayenta's thresholds by default)."""

    metrics: tuple[MetricPolicy, ...] = field(default_factory=default_metric_policies)
    confidence: float = 0.98
    pass_score: float = 95.0
    marginal_score: float = 75.0
    no_data_passes: bool = False

    @property
    def alpha(self) -> float:
        """The significance level: 1 - confidence."""
        return 1.0 - self.confidence

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": [m.to_dict() for m in self.metrics],
            "confidence": self.confidence,
            "pass_score": self.pass_score,
            "marginal_score": self.marginal_score,
            "no_data_passes": self.no_data_passes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JudgePolicy:
        return cls(
            metrics=tuple(MetricPolicy.from_dict(m) for m in data["metrics"]),
            confidence=float(data.get("confidence", 0.98)),
            pass_score=float(data.get("pass_score", 95.0)),
            marginal_score=float(data.get("marginal_score", 75.0)),
            no_data_passes=bool(data.get("no_data_passes", False)),
        )


def validate_judge_policy(policy: JudgePolicy, path: str = "analysis") -> list[tuple[str, str]]:
    """Every problem of ``policy`` as ``(path, message)`` pairs (empty when usable)."""
    issues: list[tuple[str, str]] = []
    if not 0.5 <= policy.confidence < 1.0:
        issues.append(
            (f"{path}.confidence", f"must be at least 0.5 and below 1, not {policy.confidence}")
        )
    if not 0.0 <= policy.marginal_score <= policy.pass_score <= 100.0:
        issues.append(
            (
                f"{path}.marginal_score",
                "need 0 <= marginal_score <= pass_score <= 100, not "
                f"{policy.marginal_score:g} and {policy.pass_score:g}",
            )
        )
    seen: set[JudgeMetric] = set()
    for m in policy.metrics:
        where = f"{path}.metrics.{m.metric.value}"
        if m.metric in seen:
            issues.append((where, "judged twice: name each metric once"))
        seen.add(m.metric)
        if m.min_samples < 2:
            issues.append((f"{where}.min_samples", "must be at least 2 per colour"))
        if m.weight < 0:
            issues.append((f"{where}.weight", "must be 0 or more"))
        for key in ("min_effect_relative", "min_effect_absolute"):
            value = getattr(m, key)
            if value is not None and value < 0:
                issues.append((f"{where}.{key}", "must be 0 or more (a size, not a direction)"))
    if policy.metrics and sum(m.weight for m in policy.metrics) <= 0:
        issues.append((f"{path}.metrics", "the weights add up to 0: give a metric a weight"))
    return issues


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricJudgement:
    """One metric's comparison: the numbers it was judged on and why it came out as it did.

    ``baseline`` and ``canary`` summarise each colour (``n``, rates or mean/P50/P99/std in
    seconds); ``effect_absolute`` is canary minus baseline (percentage points for the error
    rate, seconds otherwise), ``effect_relative`` the same as a fraction of the baseline.
    """

    name: str
    metric: JudgeMetric
    outcome: MetricOutcome
    reason: str
    baseline: Mapping[str, float]
    canary: Mapping[str, float]
    statistic: float | None = None
    p_value: float | None = None
    effect_absolute: float | None = None
    effect_relative: float | None = None
    critical: bool = False
    weight: float = 1.0

    @property
    def effect(self) -> float | None:
        """The change in the metric's unit (canary minus baseline)."""
        return self.effect_absolute

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metric": self.metric.value,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "baseline": dict(self.baseline),
            "canary": dict(self.canary),
            "statistic": _finite(self.statistic),
            "p_value": _finite(self.p_value),
            "effect_absolute": _finite(self.effect_absolute),
            "effect_relative": _finite(self.effect_relative),
            "critical": self.critical,
            "weight": self.weight,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricJudgement:
        return cls(
            name=str(data["name"]),
            metric=JudgeMetric(data["metric"]),
            outcome=MetricOutcome(data["outcome"]),
            reason=str(data["reason"]),
            baseline=dict(data.get("baseline", {})),
            canary=dict(data.get("canary", {})),
            statistic=data.get("statistic"),
            p_value=data.get("p_value"),
            effect_absolute=data.get("effect_absolute"),
            effect_relative=data.get("effect_relative"),
            critical=bool(data.get("critical", False)),
            weight=float(data.get("weight", 1.0)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    """The verdict of one comparison, its score (0–100) and every metric's reason."""

    verdict: JudgeVerdict
    score: float
    metrics: tuple[MetricJudgement, ...]
    reason: str
    confidence: float = 0.98

    def metric(self, name: str) -> MetricJudgement:
        """The judgement of the metric ``name`` (``KeyError`` if it was not judged)."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def failed(self) -> tuple[MetricJudgement, ...]:
        return tuple(m for m in self.metrics if m.outcome is MetricOutcome.FAIL)

    @property
    def no_data(self) -> tuple[MetricJudgement, ...]:
        """Metrics not judged for too few samples (wait for more traffic before trusting)."""
        return tuple(m for m in self.metrics if m.outcome is MetricOutcome.NO_DATA)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "score": self.score,
            "reason": self.reason,
            "confidence": self.confidence,
            "metrics": [m.to_dict() for m in self.metrics],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Judgement:
        return cls(
            verdict=JudgeVerdict(data["verdict"]),
            score=float(data["score"]),
            reason=str(data.get("reason", "")),
            confidence=float(data.get("confidence", 0.98)),
            metrics=tuple(MetricJudgement.from_dict(m) for m in data.get("metrics", ())),
        )


def judge(baseline: ColourWindow, canary: ColourWindow, policy: JudgePolicy) -> Judgement:
    """Compare ``canary`` with ``baseline`` (the same window) under ``policy``."""
    results = tuple(_judge_metric(m, baseline, canary, policy.alpha) for m in policy.metrics)
    no_data = [m for m in results if m.outcome is MetricOutcome.NO_DATA]
    # A metric without enough samples is not evidence either way: it is left out of the score
    # (as Kayenta's scorer leaves out NoData) and keeps the verdict at Marginal at best.
    counted = [
        m for m in results if m.outcome is not MetricOutcome.NO_DATA or policy.no_data_passes
    ]
    total = sum(m.weight for m in counted)
    passing = sum(m.weight for m in counted if m.outcome is not MetricOutcome.FAIL)
    score = round(100.0 * passing / total, 1) if total > 0 else 0.0
    failed = [m for m in results if m.outcome is MetricOutcome.FAIL]
    critical = [m for m in failed if m.critical]
    missing = [] if policy.no_data_passes else no_data
    thresholds = f"pass ≥ {policy.pass_score:g}, marginal ≥ {policy.marginal_score:g}"
    if critical:
        verdict = JudgeVerdict.FAIL
        why = f"critical metric failed: {_names(critical)}"
    elif not counted:
        verdict = JudgeVerdict.MARGINAL
        why = (
            f"nothing judged, not enough samples for {_names(missing)}: marginal at best"
            if missing
            else "nothing judged: the policy names no metric"
        )
    elif score < policy.marginal_score:
        verdict, why = JudgeVerdict.FAIL, f"score {score:g} ({thresholds})"
    elif score >= policy.pass_score and not missing:
        verdict, why = JudgeVerdict.PASS, f"score {score:g} ({thresholds})"
    elif score >= policy.pass_score:
        verdict = JudgeVerdict.MARGINAL
        why = (
            f"score {score:g} of the judged metrics, but not enough samples for "
            f"{_names(missing)}: marginal at best"
        )
    else:
        verdict, why = JudgeVerdict.MARGINAL, f"score {score:g} ({thresholds})"
    others = [m for m in failed if not m.critical]
    if others:
        why += f"; failed: {_names(others)}"
    if missing and counted and "not enough samples" not in why:
        why += f"; not enough samples: {_names(missing)}"
    return Judgement(
        verdict=verdict, score=score, metrics=results, reason=why, confidence=policy.confidence
    )


# ---------------------------------------------------------------------------- per metric


def _judge_metric(
    policy: MetricPolicy, baseline: ColourWindow, canary: ColourWindow, alpha: float
) -> MetricJudgement:
    if policy.metric is JudgeMetric.ERROR_RATE:
        return _error_rate(policy, baseline, canary, alpha)
    if policy.metric is JudgeMetric.LATENCY:
        return _latency(policy, baseline, canary, alpha)
    return _spread(policy, baseline, canary, alpha)


def _alternative(direction: Direction) -> str:
    """scipy's ``alternative`` for "canary is worse than baseline" (canary as first sample)."""
    return {
        Direction.INCREASE: "greater",
        Direction.DECREASE: "less",
        Direction.EITHER: "two-sided",
    }[direction]


def _bad(direction: Direction, value: float) -> float:
    """The change measured in the bad direction (positive = worse)."""
    if direction is Direction.INCREASE:
        return value
    if direction is Direction.DECREASE:
        return -value
    return abs(value)


def _relative(canary: float, baseline: float) -> float:
    if baseline > 0:
        return canary / baseline - 1.0
    return 0.0 if canary == baseline else math.copysign(math.inf, canary - baseline)


def _floors(
    policy: MetricPolicy, absolute: float, relative: float, fmt_abs: str
) -> tuple[bool, str]:
    """Whether the change reaches every floor set, and the words for it."""
    bad_abs = _bad(policy.direction, absolute)
    bad_rel = _bad(policy.direction, relative)
    parts: list[str] = []
    reached = True
    if policy.min_effect_absolute is not None:
        ok = bad_abs >= policy.min_effect_absolute
        reached &= ok
        parts.append(f"{'≥' if ok else '<'} floor {fmt_abs}")
    if policy.min_effect_relative is not None:
        ok = bad_rel >= policy.min_effect_relative
        reached &= ok
        parts.append(f"{'≥' if ok else '<'} floor {_pct(policy.min_effect_relative)}")
    if not parts:
        reached = bad_abs > 0 or (policy.direction is Direction.EITHER and absolute != 0)
    return reached, " and ".join(parts)


def _no_data(policy: MetricPolicy, unit: str, nb: int, nc: int, label: str) -> MetricJudgement:
    return MetricJudgement(
        name=policy.metric.value,
        metric=policy.metric,
        outcome=MetricOutcome.NO_DATA,
        reason=(
            f"{label}: not enough samples (canary {nc:,} {unit}, baseline {nb:,}, minimum "
            f"{policy.min_samples:,} per colour)"
        ),
        baseline={"n": float(nb)},
        canary={"n": float(nc)},
        critical=policy.critical,
        weight=policy.weight,
    )


def _error_rate(
    policy: MetricPolicy, baseline: ColourWindow, canary: ColourWindow, alpha: float
) -> MetricJudgement:
    label = "error rate"
    if min(baseline.requests, canary.requests) < policy.min_samples:
        return _no_data(policy, "requests", baseline.requests, canary.requests, label)
    table = [
        [canary.errors, canary.requests - canary.errors],
        [baseline.errors, baseline.requests - baseline.errors],
    ]
    from scipy import stats  # imported when judging: the CLI starts without scipy

    res = stats.fisher_exact(table, alternative=_alternative(policy.direction))
    p = float(res.pvalue)
    odds = float(res.statistic)
    rb, rc = baseline.error_rate, canary.error_rate
    absolute = (rc - rb) * 100.0  # percentage points
    relative = _relative(rc, rb)
    floor_abs = f"{policy.min_effect_absolute:g} pp" if policy.min_effect_absolute else ""
    reached, floors = _floors(policy, absolute, relative, floor_abs)
    change = f"{absolute:+.1f} pp"
    if relative not in (0.0,) and policy.min_effect_relative is not None:
        change += f", {_signed_pct(relative)}"
    outcome, detail = _decide(p, alpha, reached, change, floors)
    return MetricJudgement(
        name=policy.metric.value,
        metric=policy.metric,
        outcome=outcome,
        reason=f"{label} {_rate(rc)} vs {_rate(rb)} ({detail})",
        baseline={"n": float(baseline.requests), "errors": float(baseline.errors), "rate": rb},
        canary={"n": float(canary.requests), "errors": float(canary.errors), "rate": rc},
        statistic=odds,
        p_value=p,
        effect_absolute=absolute,
        effect_relative=relative,
        critical=policy.critical,
        weight=policy.weight,
    )


def _latency(
    policy: MetricPolicy, baseline: ColourWindow, canary: ColourWindow, alpha: float
) -> MetricJudgement:
    label = "latency"
    b, c = baseline.latencies, canary.latencies
    if min(len(b), len(c)) < policy.min_samples:
        return _no_data(policy, "samples", len(b), len(c), label)
    sb, sc = _summary(b), _summary(c)
    from scipy import stats

    with _quiet():
        res = stats.mannwhitneyu(c, b, alternative=_alternative(policy.direction))
    p = _p(res.pvalue)
    absolute = sc["mean"] - sb["mean"]
    relative = _relative(sc["mean"], sb["mean"])
    floor_abs = _secs(policy.min_effect_absolute) if policy.min_effect_absolute else ""
    reached, floors = _floors(policy, absolute, relative, floor_abs)
    outcome, detail = _decide(p, alpha, reached, f"mean {_signed_pct(relative)}", floors)
    reason = (
        f"{label} mean {_secs(sc['mean'])} vs {_secs(sb['mean'])}, "
        f"P99 {_secs(sc['p99'])} vs {_secs(sb['p99'])} (Mann–Whitney {detail})"
    )
    return MetricJudgement(
        name=policy.metric.value,
        metric=policy.metric,
        outcome=outcome,
        reason=reason,
        baseline=sb,
        canary=sc,
        statistic=float(res.statistic),
        p_value=p,
        effect_absolute=absolute,
        effect_relative=relative,
        critical=policy.critical,
        weight=policy.weight,
    )


def _spread(
    policy: MetricPolicy, baseline: ColourWindow, canary: ColourWindow, alpha: float
) -> MetricJudgement:
    label = "latency spread"
    b, c = baseline.latencies, canary.latencies
    if min(len(b), len(c)) < policy.min_samples:
        return _no_data(policy, "samples", len(b), len(c), label)
    sb, sc = _summary(b), _summary(c)
    if sb["std"] == 0.0 and sc["std"] == 0.0:
        statistic, p = 0.0, 1.0  # both constant: no spread to compare
    else:
        from scipy import stats

        with _quiet():
            res = stats.levene(c, b, center="median")
        statistic, p = float(res.statistic), _p(res.pvalue)
    absolute = sc["std"] - sb["std"]
    relative = _relative(sc["std"], sb["std"])
    floor_abs = _secs(policy.min_effect_absolute) if policy.min_effect_absolute else ""
    reached, floors = _floors(policy, absolute, relative, floor_abs)
    outcome, detail = _decide(p, alpha, reached, f"std {_signed_pct(relative)}", floors)
    reason = f"{label} (std) {_secs(sc['std'])} vs {_secs(sb['std'])} (Levene {detail})"
    return MetricJudgement(
        name=policy.metric.value,
        metric=policy.metric,
        outcome=outcome,
        reason=reason,
        baseline=sb,
        canary=sc,
        statistic=statistic,
        p_value=p,
        effect_absolute=absolute,
        effect_relative=relative,
        critical=policy.critical,
        weight=policy.weight,
    )


def _decide(
    p: float, alpha: float, reached: bool, change: str, floors: str
) -> tuple[MetricOutcome, str]:
    """Fail only when significant and large enough; the words say which of the two held."""
    ptext = _ptext(p)
    tail = f" {floors}" if floors else ""
    if p < alpha and reached:
        return MetricOutcome.FAIL, f"{ptext}, {change}{tail}"
    if p < alpha:
        return MetricOutcome.PASS, f"{ptext}, {change}{tail}: too small to matter"
    confidence = f"{(1 - alpha) * 100:g} %"
    return MetricOutcome.PASS, f"{ptext}, {change}: not significant at {confidence}"


# ---------------------------------------------------------------------------- numbers


def _summary(values: Sequence[float]) -> dict[str, float]:
    import numpy as np

    arr = np.asarray(values, dtype=float)
    p50, p99 = np.percentile(arr, [50.0, 99.0])
    return {
        "n": float(arr.size),
        "mean": float(arr.mean()),
        "p50": float(p50),
        "p99": float(p99),
        "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
    }


@contextmanager
def _quiet() -> Iterator[None]:
    """scipy warns on degenerate samples (all ties); the p-value it returns is what counts."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _p(value: Any) -> float:
    p = float(value)
    return 1.0 if math.isnan(p) else p


def _finite(value: float | None) -> float | None:
    """JSON has no infinity or NaN: those are stored as null."""
    if value is None or not math.isfinite(value):
        return None
    return value


def _names(items: Iterable[MetricJudgement]) -> str:
    return ", ".join(m.name for m in items)


def _ptext(p: float) -> str:
    return "p<0.0001" if p < 0.0001 else f"p={p:.4f}" if p < 0.01 else f"p={p:.2f}"


def _rate(rate: float) -> str:
    return f"{rate * 100:.1f} %"


def _pct(fraction: float) -> str:
    return f"{fraction * 100:g} %"


def _signed_pct(fraction: float) -> str:
    if math.isinf(fraction):
        return "+∞ %" if fraction > 0 else "-∞ %"
    return f"{fraction * 100:+.0f} %"


def _secs(seconds: float | None) -> str:
    s = seconds or 0.0
    if abs(s) < 1.0:
        return f"{s * 1000:.0f} ms"
    return f"{s:.2f} s"
