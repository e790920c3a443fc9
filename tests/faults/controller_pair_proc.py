"""One of two controllers sharing a state store: ``python controller_pair_proc.py URL WORKDIR``.

The platform is the in-memory reference platform whose target-group deletions are appended to
``WORKDIR/deleted.log`` (so what a killed controller did survives it, as on a real platform),
with one alarm that is breached from the start (LowHealthyHosts: no healthy host behind the
production listener) and a notifier that appends each notice to ``WORKDIR/notices.log``.
The lease lives ``CONTROLLER_PAIR_TTL`` seconds; each deletion takes 50 ms.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from deployops.clock import SystemClock
from deployops.config.monitoring import AlarmConfig, alarm_definitions
from deployops.domain.model import HealthCheck
from deployops.drivers.memory import MemoryCloud, MemoryCompute, MemoryMetrics, MemoryTraffic
from deployops.engine.alarms import AlarmEvaluator
from deployops.engine.controller import Controller
from deployops.engine.lease import LeaderLease, controller_lease_name
from deployops.store import StateStore
from deployops.wiring import owner_alive, whoami


def _append(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


class LoggedTraffic(MemoryTraffic):
    def __init__(self, *, cloud: MemoryCloud, log: Path) -> None:
        super().__init__(cloud=cloud)
        self.log = log

    def delete_target_group(self, name: str) -> None:
        time.sleep(0.05)  # a real deletion takes a while
        super().delete_target_group(name)
        _append(self.log, f"{name} {os.getpid()}")


def main() -> None:
    url, workdir = sys.argv[1], Path(sys.argv[2])
    groups = int(os.environ["CONTROLLER_PAIR_GROUPS"])
    clock = SystemClock()
    cloud = MemoryCloud(clock=clock)
    cloud.add_service_listeners("web", 18080)
    log = workdir / "deleted.log"
    deleted = {line.split()[0] for line in log.read_text().splitlines()} if log.exists() else set()
    traffic = LoggedTraffic(cloud=cloud, log=log)
    for i in range(groups):
        if f"old-{i}" not in deleted:
            traffic.create_target_group(f"old-{i}", health_check=HealthCheck())
    store = StateStore.open(url)
    worker = whoami()
    only_low_hosts = {
        name: AlarmConfig(enabled=False)
        for name in (
            "HighCPUUtilization",
            "HighErrorRate",
            "HighMemoryUsage",
            "DatabaseConnections",
        )
    }
    only_low_hosts["LowHealthyHosts"] = AlarmConfig(period=1.0, missing_data="breaching")
    evaluator = AlarmEvaluator(
        alarms=alarm_definitions(only_low_hosts),
        environment="production",
        services=["web"],
        metrics=MemoryMetrics(cloud=cloud),
        traffic=traffic,
        store=store,
        clock=clock,
        notify=lambda notice: _append(workdir / "notices.log", f"{notice.title} {os.getpid()}"),
    )
    lease = LeaderLease(
        store=store,
        name=controller_lease_name("production"),
        holder=worker,
        clock=clock,
        ttl_s=float(os.environ["CONTROLLER_PAIR_TTL"]),
    )
    controller = Controller(
        store=store,
        clock=clock,
        environment="production",
        traffic=traffic,
        compute=MemoryCompute(cloud=cloud),
        worker=worker,
        evaluator=evaluator,
        owner_alive=owner_alive,
        job_interval_s=0.1,
        tick_s=0.05,
        lease=lease,
    )
    stop = threading.Event()
    threading.Thread(target=lease.keep, args=(stop,), daemon=True).start()
    controller.start()
    controller.run(stop)


if __name__ == "__main__":
    main()
