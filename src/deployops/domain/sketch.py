"""A mergeable quantile sketch with relative-error guarantees (DDSketch-style log buckets).

Latency percentiles must come from the distribution, not from averages of averages: the
collector stores one sketch per target group and interval, and a query merges the sketches of
any period to answer any percentile (p50/p90/p99) over it.

A value ``v > 0`` falls into bucket ``i = ceil(log_gamma(v))`` with
``gamma = (1 + alpha) / (1 - alpha)``; every value of bucket ``i`` is within ``alpha`` (relative)
of the bucket's representative ``2 * gamma**i / (gamma + 1)``. Merging adds bucket counts, so
``merge(sketch(a), sketch(b)) == sketch(a + b)`` exactly.

>>> s = LatencySketch()
>>> for ms in (10, 20, 30, 40, 1000):
...     s.add(ms)
>>> round(s.quantile(0.5))
30
>>> LatencySketch.from_json(s.to_json()) == s
True
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["DEFAULT_RELATIVE_ACCURACY", "LatencySketch"]

DEFAULT_RELATIVE_ACCURACY = 0.01
# Values at or below this count as zero (a latency of a nanosecond is a zero latency).
_MIN_INDEXABLE = 1e-9


class LatencySketch:
    """Counts of non-negative values in logarithmic buckets. Not thread-safe."""

    __slots__ = ("_bins", "_count", "_gamma", "_ln_gamma", "_max", "_min", "_zero", "alpha")

    def __init__(self, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> None:
        if not 0.0 < relative_accuracy < 1.0:
            raise ValueError(f"relative accuracy must be in (0, 1), not {relative_accuracy!r}")
        self.alpha = relative_accuracy
        self._gamma = (1.0 + relative_accuracy) / (1.0 - relative_accuracy)
        self._ln_gamma = math.log(self._gamma)
        self._bins: dict[int, int] = {}
        self._zero = 0
        self._count = 0
        self._min = math.inf
        self._max = -math.inf

    # ------------------------------------------------------------------ building
    def _index(self, value: float) -> int:
        return math.ceil(math.log(value) / self._ln_gamma)

    def _value(self, index: int) -> float:
        return 2.0 * self._gamma**index / (self._gamma + 1.0)

    def add(self, value: float, count: int = 1) -> None:
        """Record ``value`` (``count`` times). Negative or non-finite values are refused."""
        if count < 0:
            raise ValueError(f"count must be >= 0, not {count}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"a sketch holds finite values >= 0, not {value!r}")
        if count == 0:
            return
        if value <= _MIN_INDEXABLE:
            self._zero += count
        else:
            i = self._index(value)
            self._bins[i] = self._bins.get(i, 0) + count
        self._count += count
        self._min = min(self._min, value)
        self._max = max(self._max, value)

    def merge(self, other: LatencySketch) -> None:
        """Add ``other``'s values to this sketch (same relative accuracy required)."""
        if other.alpha != self.alpha:
            raise ValueError(
                f"cannot merge sketches of relative accuracy {self.alpha} and {other.alpha}"
            )
        for i, c in other._bins.items():
            self._bins[i] = self._bins.get(i, 0) + c
        self._zero += other._zero
        self._count += other._count
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def copy(self) -> LatencySketch:
        out = LatencySketch(self.alpha)
        out.merge(self)
        return out

    # ------------------------------------------------------------------ reading
    @property
    def count(self) -> int:
        return self._count

    @property
    def min(self) -> float:
        """The smallest value added (exact). ``ValueError`` when empty."""
        if not self._count:
            raise ValueError("an empty sketch has no minimum")
        return self._min

    @property
    def max(self) -> float:
        """The largest value added (exact). ``ValueError`` when empty."""
        if not self._count:
            raise ValueError("an empty sketch has no maximum")
        return self._max

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (0 <= q <= 1), within the relative accuracy of the exact lower
        quantile ``sorted(values)[floor(q * (n - 1))]``. ``ValueError`` when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], not {q!r}")
        if not self._count:
            raise ValueError("an empty sketch has no quantiles")
        if q == 0.0:
            return self._min
        if q == 1.0:
            return self._max
        rank = math.floor(q * (self._count - 1))
        seen = self._zero
        if rank < seen:
            return self._min  # the zero bucket holds values <= 1e-9: min is as good
        for i in sorted(self._bins):
            seen += self._bins[i]
            if rank < seen:
                # The bucket's representative, kept inside the exact [min, max] range.
                return min(max(self._value(i), self._min), self._max)
        return self._max  # pragma: no cover - counts always add up to rank

    def items(self) -> list[tuple[float, int]]:
        """``(representative value, count)`` per bucket, smallest first (zeros as 0.0): the
        distribution as weighted values, each within the relative accuracy of what was added."""
        out: list[tuple[float, int]] = [(0.0, self._zero)] if self._zero else []
        for i in sorted(self._bins):
            value = min(max(self._value(i), self._min), self._max)
            out.append((value, self._bins[i]))
        return out

    # ------------------------------------------------------------------ equality, JSON
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencySketch):
            return NotImplemented
        return (
            self.alpha == other.alpha
            and self._count == other._count
            and self._zero == other._zero
            and self._bins == other._bins
            and (not self._count or (self._min == other._min and self._max == other._max))
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"LatencySketch(alpha={self.alpha}, count={self._count}, bins={len(self._bins)})"

    def to_json(self) -> str:
        """Compact JSON: bucket indexes are delta-encoded, so a typical latency distribution
        takes a few hundred bytes."""
        keys = sorted(self._bins)
        deltas = [k - p for k, p in zip(keys, [0, *keys][: len(keys)], strict=True)]
        doc: dict[str, Any] = {
            "a": self.alpha,
            "z": self._zero,
            "k": deltas,
            "c": [self._bins[k] for k in keys],
        }
        if self._count:
            doc["lo"] = self._min
            doc["hi"] = self._max
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LatencySketch:
        """The sketch :meth:`to_json` wrote. ``ValueError`` naming the problem otherwise."""
        try:
            doc = json.loads(text)
            out = cls(float(doc["a"]))
            zero = int(doc["z"])
            deltas = [int(d) for d in doc["k"]]
            counts = [int(c) for c in doc["c"]]
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not a latency sketch: {exc}") from exc
        if len(deltas) != len(counts) or zero < 0 or any(c <= 0 for c in counts):
            raise ValueError("not a latency sketch: inconsistent buckets")
        index = 0
        for d, c in zip(deltas, counts, strict=True):
            index += d
            out._bins[index] = c
        out._zero = zero
        out._count = zero + sum(counts)
        if out._count:
            try:
                out._min = float(doc["lo"])
                out._max = float(doc["hi"])
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"not a latency sketch: {exc}") from exc
        return out
