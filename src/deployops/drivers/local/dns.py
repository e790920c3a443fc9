"""``ListenerDns``: the ``Dns`` port on the local platform (DR-5's DNS failover locally).

Locally the "name the clients resolve" is a service's production listener (the HAProxy front
on its port): pointing it at another site is switching that listener to another target group,
what the region-failure drill's front repoint does. Any ``Traffic`` driver works.

    dns = ListenerDns(traffic=plat.traffic)
    dns.point("web-prod", "web-green")
"""

from __future__ import annotations

from typing import ClassVar

from deployops.ports import Traffic

__all__ = ["ListenerDns"]


class ListenerDns:
    name: ClassVar[str] = "listener"
    capabilities: ClassVar[frozenset[str]] = frozenset({"failover"})

    def __init__(self, *, traffic: Traffic) -> None:
        self.traffic = traffic

    def current(self, record: str) -> str:
        return self.traffic.describe_listener(record).target_group

    def point(self, record: str, target: str) -> str:
        if self.current(record) != target:
            self.traffic.switch_listener(record, target)
        return self.current(record)
