"""``ListenerDns`` (DR-5 locally): the name clients use is a service's production listener;
failing it over is switching that listener to another target group, read back."""

from __future__ import annotations

from deployops.clock import VirtualClock
from deployops.domain.model import HealthCheck
from deployops.drivers.local.dns import ListenerDns
from deployops.drivers.memory import MemoryCloud, MemoryTraffic
from deployops.ports.recovery import Dns


def test_dr5_listener_dns_points_the_production_listener_and_reads_it_back() -> None:
    cloud = MemoryCloud(clock=VirtualClock())
    cloud.add_service_listeners("web", 18080)
    traffic = MemoryTraffic(cloud=cloud)
    for tg in ("web-blue", "web-green"):
        traffic.create_target_group(tg, health_check=HealthCheck())
    traffic.switch_listener("web-prod", "web-blue")
    dns = ListenerDns(traffic=traffic)
    assert isinstance(dns, Dns)
    assert dns.current("web-prod") == "web-blue"
    assert dns.point("web-prod", "web-green") == "web-green"
    assert dns.point("web-prod", "web-green") == "web-green"  # idempotent
    assert traffic.describe_listener("web-prod").target_group == "web-green"
