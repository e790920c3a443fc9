"""Injected time and ids. A 24-hour rule (DEP-4 target-group retention) must run in
milliseconds on the VirtualClock; deployment ids (``dep-20261129-174501-7f3a``) sort by time
and never collide."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from deployops.clock import Clock, SystemClock, VirtualClock, utc
from deployops.ids import new_id


def test_virtual_sleep_of_a_day_advances_instantly_dep4() -> None:
    clock = VirtualClock(start=datetime(2026, 11, 29, 17, 45, 1, tzinfo=UTC))
    started = time.perf_counter()
    clock.sleep(86400)  # DEP-4: the old target group is deleted 24 h later
    assert time.perf_counter() - started < 0.05
    assert clock.now() == datetime(2026, 11, 30, 17, 45, 1, tzinfo=UTC)
    assert clock.monotonic() == 86400


def test_virtual_clock_only_moves_when_told() -> None:
    clock = VirtualClock()
    first = clock.now()
    assert clock.now() == first
    assert first.tzinfo is not None
    clock.advance(1.5)
    assert clock.now() - first == timedelta(seconds=1.5)
    clock.sleep(0)
    assert clock.monotonic() == 1.5
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(-1)


def test_virtual_clock_is_thread_safe() -> None:
    clock = VirtualClock()

    def tick() -> None:
        for _ in range(1000):
            clock.sleep(0.001)

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert clock.monotonic() == pytest.approx(4.0)


def test_both_clocks_satisfy_the_protocol_and_system_time_is_utc() -> None:
    assert isinstance(VirtualClock(), Clock)
    real = SystemClock()
    assert isinstance(real, Clock)
    assert real.now().utcoffset() == timedelta(0)
    a = real.monotonic()
    real.sleep(0.01)
    real.sleep(-1)  # a negative wait is no wait, not an error
    assert real.monotonic() - a >= 0.01
    assert utc(0) == datetime(1970, 1, 1, tzinfo=UTC)


def test_id_shape_matches_the_documented_example() -> None:
    dep = new_id("dep", datetime(2026, 11, 29, 17, 45, 1, tzinfo=UTC))
    assert re.fullmatch(r"dep-20261129-174501-[0-9a-f]{4}", dep)


def test_ids_sort_by_time() -> None:
    clock = VirtualClock(start=datetime(2026, 12, 31, 23, 59, 58, tzinfo=UTC))
    ids = []
    for _ in range(5):
        ids.append(new_id("dep", clock.now()))
        clock.sleep(1)  # across midnight and the new year
    assert sorted(ids) == ids
    assert ids[2].startswith("dep-20270101-000000-")


def test_ids_within_one_second_are_unique() -> None:
    """A thousand ids issued in the same second (a burst of jobs, events) never repeat."""
    now = datetime(2026, 11, 29, 17, 45, 1, tzinfo=UTC)
    ids = [new_id("dep", now) for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(i.startswith("dep-20261129-174501-") for i in ids)
