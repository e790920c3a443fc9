"""Read a Prometheus exposition the way a scraper does (label order is not part of it)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(sample name, {(label, value), ...}): value}`` of every sample in ``text``."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = float(s.value)
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    """The sample ``name`` with exactly ``labels``, or None."""
    return samples(text).get((name, frozenset(labels.items())))


def has(text: str, name: str, **labels: str) -> bool:
    """Whether some sample ``name`` carries at least ``labels``."""
    want = set(labels.items())
    return any(n == name and want <= set(ls) for n, ls in samples(text))
