"""Due dates follow the guide's periods (SEC-2, SEC-3): pure arithmetic on a given "now"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from deployops.config.secrets import SecretsConfig
from deployops.domain.secrets import (
    ManagedSecret,
    SecretInfo,
    SecretKind,
    SecretVersion,
    Stage,
    is_due,
    next_due,
    promote_labels,
    secret_status,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_sec3_default_periods_are_the_guides() -> None:
    periods = {s.name: s.period_days for s in SecretsConfig().managed_secrets()}
    assert periods == {
        "database-password": 90,
        "jwt-secret": 365,
        "api-keys": 180,
        "encryption-keys": 365,
    }


def test_sec3_due_exactly_at_the_period_not_a_second_before() -> None:
    due = next_due(T0, period_days=90)
    assert due == T0 + timedelta(days=90)
    assert not is_due(T0, period_days=90, now=due - timedelta(seconds=1))
    assert is_due(T0, period_days=90, now=due)
    assert is_due(None, period_days=90, now=T0)  # never rotated: due


def test_sec2_status_row_uses_the_current_versions_date_when_never_rotated() -> None:
    info = SecretInfo(
        name="api-keys",
        versions=(SecretVersion("v1", frozenset({Stage.CURRENT}), created_at=T0),),
    )
    row = secret_status(
        ManagedSecret.default(SecretKind.API_KEYS),
        store="memory",
        info=info,
        last_rotated=None,
        now=T0 + timedelta(days=179),
    )
    assert (row.version, row.due, row.next_due) == ("v1", False, T0 + timedelta(days=180))


def test_sec3_promotion_keeps_one_label_each() -> None:
    labels = {
        "a": frozenset({Stage.PREVIOUS}),
        "b": frozenset({Stage.CURRENT}),
        "c": frozenset({Stage.PENDING}),
    }
    after = promote_labels(labels, "c")
    assert after == {
        "a": frozenset(),
        "b": frozenset({Stage.PREVIOUS}),
        "c": frozenset({Stage.CURRENT}),
    }
