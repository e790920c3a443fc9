"""A controller process for the SIGKILL test: ``python controller_proc.py STATE_DB WORKDIR``.

Its platform is the in-memory reference platform whose target groups persist in an append-only
deletion log (``WORKDIR/deleted.log``): a group is gone once its line is written, so what a
killed controller did survives it, as on a real platform. Each deletion takes 50 ms, so a kill
lands in the middle of the work.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from deployops.clock import SystemClock
from deployops.domain.model import HealthCheck
from deployops.drivers.memory import MemoryCloud, MemoryCompute, MemoryTraffic
from deployops.engine.controller import Controller
from deployops.store import StateStore
from deployops.wiring import owner_alive, whoami

GROUPS = int(os.environ.get("CONTROLLER_PROC_GROUPS", "30"))


class LoggedTraffic(MemoryTraffic):
    def __init__(self, *, cloud: MemoryCloud, log: Path) -> None:
        super().__init__(cloud=cloud)
        self.log = log

    def delete_target_group(self, name: str) -> None:
        time.sleep(0.05)  # a real deletion takes a while
        super().delete_target_group(name)
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{name} {os.getpid()}\n".encode())
        finally:
            os.close(fd)


def main() -> None:
    state, workdir = sys.argv[1], Path(sys.argv[2])
    clock = SystemClock()
    cloud = MemoryCloud(clock=clock)
    cloud.add_service_listeners("web", 18080)
    cloud.add_listener("web-test", 18081, "web-blue")
    log = workdir / "deleted.log"
    deleted = {line.split()[0] for line in log.read_text().splitlines()} if log.exists() else set()
    traffic = LoggedTraffic(cloud=cloud, log=log)
    for i in range(GROUPS):
        if f"old-{i}" not in deleted:
            traffic.create_target_group(f"old-{i}", health_check=HealthCheck())
    store = StateStore.open(state)
    controller = Controller(
        store=store,
        clock=clock,
        environment="production",
        traffic=traffic,
        compute=MemoryCompute(cloud=cloud),
        worker=whoami(),
        owner_alive=owner_alive,
        job_interval_s=0.1,
        tick_s=0.05,
    )
    controller.start()
    (workdir / f"started.{os.getpid()}").write_text("")
    controller.run(threading.Event())


if __name__ == "__main__":
    main()
