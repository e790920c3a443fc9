"""``HaproxyTraffic``: the ``Traffic`` port over HAProxy's runtime API, through the daemon."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from deployops.clock import Clock
from deployops.domain.model import HealthCheck, Listener, TargetGroup
from deployops.drivers.local import wire
from deployops.drivers.local.client import DaemonClient

__all__ = ["HaproxyTraffic"]


class HaproxyTraffic:
    """Two target groups per service (``{service}-blue``, ``{service}-green``); listeners
    ``{service}-prod`` and ``{service}-test`` switch between them with ``set map``, and split
    their requests between them by weight (``weights``: a percent per request, also
    ``set map``)."""

    name: ClassVar[str] = "haproxy"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"atomic_switch", "test_listener", "health_checks", "drain", "weights"}
    )

    def __init__(self, *, client: DaemonClient, clock: Clock) -> None:
        self.client = client
        self.clock = clock

    def create_target_group(self, name: str, *, health_check: HealthCheck) -> TargetGroup:
        return wire.target_group_from(
            self.client.call(
                "create_target_group", name=name, health_check=wire.health_check_to(health_check)
            )
        )

    def delete_target_group(self, name: str) -> None:
        self.client.call("delete_target_group", name=name)

    def describe_target_group(self, name: str) -> TargetGroup | None:
        raw = self.client.call("describe_target_group", name=name)
        return wire.target_group_from(raw) if raw else None

    def list_target_groups(self) -> Sequence[str]:
        return [str(n) for n in self.client.call("list_target_groups")]

    def describe_listener(self, name: str) -> Listener:
        return wire.listener_from(self.client.call("describe_listener", name=name))

    def list_listeners(self) -> Sequence[Listener]:
        return [wire.listener_from(li) for li in self.client.call("list_listeners")]

    def switch_listener(self, name: str, target_group: str) -> Listener:
        return wire.listener_from(
            self.client.call("switch_listener", name=name, target_group=target_group)
        )

    def set_weights(self, name: str, weights: Mapping[str, int]) -> Listener:
        """Split the listener between the colours by weight with ``set map`` (no reload);
        read back before it returns."""
        return wire.listener_from(
            self.client.call(
                "set_weights", name=name, weights={str(k): int(v) for k, v in weights.items()}
            )
        )

    def close(self) -> None:
        self.client.close()
