"""``LocalCompute``: the ``Compute`` port over the local daemon's supervisor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from deployops.clock import Clock
from deployops.domain.model import ServiceState, TaskDefinition, TaskDefinitionSpec
from deployops.drivers.local import wire
from deployops.drivers.local.client import DaemonClient

__all__ = ["LocalCompute"]


class LocalCompute:
    """Replicas are child processes of the daemon, each with its own ``PORT``."""

    name: ClassVar[str] = "local"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"task_definitions", "services", "rolling_update", "restart_on_failure"}
    )

    def __init__(self, *, client: DaemonClient, clock: Clock) -> None:
        self.client = client
        self.clock = clock

    def register_task_definition(self, spec: TaskDefinitionSpec) -> TaskDefinition:
        return wire.task_definition_from(
            self.client.call("register_task_definition", spec=wire.spec_to(spec))
        )

    def describe_task_definition(self, ref: str) -> TaskDefinition:
        return wire.task_definition_from(self.client.call("describe_task_definition", ref=ref))

    def create_service(
        self, name: str, *, task_definition: str, desired_count: int, target_group: str
    ) -> ServiceState:
        return wire.service_from(
            self.client.call(
                "create_service",
                name=name,
                task_definition=task_definition,
                desired_count=desired_count,
                target_group=target_group,
            )
        )

    def update_service(
        self, name: str, *, task_definition: str | None = None, desired_count: int | None = None
    ) -> ServiceState:
        return wire.service_from(
            self.client.call(
                "update_service",
                name=name,
                task_definition=task_definition,
                desired_count=desired_count,
            )
        )

    def describe_service(self, name: str) -> ServiceState | None:
        raw = self.client.call("describe_service", name=name)
        return wire.service_from(raw) if raw else None

    def delete_service(self, name: str) -> None:
        self.client.call("delete_service", name=name)

    def list_services(self) -> Sequence[str]:
        return [str(s) for s in self.client.call("list_services")]

    def close(self) -> None:
        self.client.close()
