"""The weighted split between the colours on the real HAProxy (capability ``weights``): the
canary and linear shifts move a share of production with ``set map`` on the runtime API,
never a reload."""

from __future__ import annotations

import threading

import httpx
import pytest

from deployops.drivers.local import control
from deployops.drivers.local.haproxy import split_key
from tests.fixtures_local import FAST_HEALTH, LocalPlatformHandle

pytestmark = pytest.mark.integration


def _two_colours(p: LocalPlatformHandle) -> None:
    """1.0.0 on blue (production), 2.0.0 on green, one replica each, healthy."""
    for colour, version in (("web-blue", "1.0.0"), ("web-green", "2.0.0")):
        td = p.compute.register_task_definition(p.spec(version))
        p.traffic.create_target_group(colour, health_check=FAST_HEALTH)
        p.compute.create_service(
            colour, task_definition=td.ref, desired_count=1, target_group=colour
        )
    for colour in ("web-blue", "web-green"):
        p.wait_until(
            lambda c=colour: (
                (g := p.traffic.describe_target_group(c)) is not None and g.healthy_count == 1
            ),
            what=f"{colour} healthy",
        )
    p.traffic.switch_listener("web-prod", "web-blue")


def _versions(p: LocalPlatformHandle, n: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        for _ in range(n):
            r = client.get(f"http://127.0.0.1:{p.prod_port}/")
            assert r.status_code == 200, r.text
            v = str(r.json()["version"])
            counts[v] = counts.get(v, 0) + 1
    return counts


def test_weights_split_production_within_tolerance(local_platform: LocalPlatformHandle) -> None:
    """10 % / 90 % over 2000 requests lands within 4 points of 10 % (over 6 standard
    deviations of the binomial draw); the listener reads back the weights; 0 % on the new
    colour is the plain switch again, and 100 % is a switch to it."""
    p = local_platform
    _two_colours(p)
    listener = p.traffic.set_weights("web-prod", {"web-blue": 90, "web-green": 10})
    assert dict(listener.forwards) == {"web-blue": 90, "web-green": 10}
    assert p.traffic.describe_listener("web-prod").forwards == listener.forwards
    assert "prod 10" in p.paths.weights_map_file("web").read_text()  # survives a restart
    counts = _versions(p, 2000)
    share = counts.get("2.0.0", 0) / 2000
    assert abs(share - 0.10) < 0.04, counts

    back = p.traffic.set_weights("web-prod", {"web-blue": 100, "web-green": 0})
    assert back.forwards == (("web-blue", 100),)
    assert _versions(p, 200) == {"1.0.0": 200}

    moved = p.traffic.set_weights("web-prod", {"web-green": 100, "web-blue": 0})
    assert moved.forwards == (("web-green", 100),)
    assert _versions(p, 200) == {"2.0.0": 200}
    text = p.paths.map_file("web").read_text()
    assert "prod web-green" in text and f"{split_key('prod')} web-blue" in text


def test_weight_changes_under_load_need_no_reload_and_drop_nothing(
    local_platform: LocalPlatformHandle,
) -> None:
    """A client sends requests while the split goes 5 -> 25 -> 50 -> 100 % and back to 0:
    every request is answered 200, both versions answer while split, and HAProxy's master
    and worker processes are the same ones before and after (no reload, no restart)."""
    p = local_platform
    _two_colours(p)
    before = control.status(p.project, p.environment)
    results: list[tuple[int, str]] = []
    errors: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            for _ in range(20000):
                if stop.is_set():
                    return
                try:
                    r = client.get(f"http://127.0.0.1:{p.prod_port}/")
                    results.append((r.status_code, str(r.json().get("version", ""))))
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

    worker = threading.Thread(target=load)
    worker.start()
    try:
        seen: list[dict[str, int]] = []
        for green in (5, 25, 50, 100, 0):
            p.traffic.set_weights("web-prod", {"web-blue": 100 - green, "web-green": green})
            mark = len(results)
            p.wait_until(lambda m=mark: len(results) > m + 150, what=f"load at {green}%")
            window = results[mark + 20 :]  # requests in flight at the change may be either
            seen.append({v: sum(1 for _, x in window if x == v) for v in ("1.0.0", "2.0.0")})
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not errors, errors[:3]
    assert {s for s, _ in results} == {200}
    at50, at100, at0 = seen[2], seen[3], seen[4]
    assert at50["1.0.0"] > 0 and at50["2.0.0"] > 0, seen
    assert at100["1.0.0"] == 0, seen
    assert at0["2.0.0"] == 0, seen
    after = control.status(p.project, p.environment)
    assert after["haproxy_pid"] == before["haproxy_pid"]
    assert sorted(after["haproxy_workers"]) == sorted(before["haproxy_workers"])
