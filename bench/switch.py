"""Listener switch (DEP-3): blue -> green and back 10 times, idle and under wrk load through the
production listener, with ``set map`` on the admin socket (what deployops does) and, side by
side in the same run, the reload approach (rewrite the map file, ``reload`` on the master
socket) on a separate throwaway HAProxy built from a copy of the platform's configuration.

Switch latency is measured from the moment the command is sent to the first response that
comes from the new colour (blue and green run different versions; ``/`` names its version).
Goals: no failed request; switch latency <= 5 ms idle and <= 30 ms under load.

    .venv/bin/python bench/switch.py [--round-trips 20] [--connections 16]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import percentile, update_section, write_result
from _platform import Bench, WrkResult, free_port, platform, start_wrk, wait_until

GOAL_IDLE_MS = 5.0
GOAL_LOAD_MS = 30.0
VERSIONS = {"web-blue": "1.0.0", "web-green": "2.0.0"}


class Series:
    """Switch latencies of one approach in one condition, and what the probe saw fail.

    (A plain class: ``run_all`` loads benchmarks without registering them in sys.modules,
    which dataclasses need.)"""

    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.command_ms: list[float] = []  # until the switch command returned
        self.probe_requests = 0
        self.probe_failed = 0

    def summary(self) -> dict[str, Any]:
        ms = self.latencies_ms
        return {
            "switches": len(ms),
            "p50_ms": round(percentile(ms, 0.5), 2),
            "max_ms": round(max(ms), 2),
            "command_p50_ms": round(percentile(self.command_ms, 0.5), 2),
            "command_max_ms": round(max(self.command_ms), 2),
            "probe_requests": self.probe_requests,
            "probe_failed": self.probe_failed,
        }


class Prober:
    """One keep-alive client asking ``/`` until the answer comes from ``version``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def get(self) -> tuple[int, str]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5.0)
        try:
            self.conn.request("GET", "/")
            resp = self.conn.getresponse()
            body = resp.read()
            if resp.will_close:
                self.close()
        except (OSError, http.client.HTTPException):
            self.close()
            return 0, ""
        try:
            return resp.status, str(json.loads(body).get("version", ""))
        except ValueError:
            return resp.status, ""

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def measure_switches(
    switch: Callable[[str], None], port: int, round_trips: int, series: Series
) -> None:
    """``round_trips`` times blue -> green -> blue; each switch timed from the command to the
    first answer from the new colour (bounded: 5 s per switch)."""
    prober = Prober(port)
    try:
        status, version = prober.get()
        if version != VERSIONS["web-blue"]:
            raise RuntimeError(f"expected blue before the first switch, got {status} {version}")
        for _ in range(round_trips):
            for colour in ("web-green", "web-blue"):
                want = VERSIONS[colour]
                started = time.perf_counter()
                switch(colour)
                series.command_ms.append((time.perf_counter() - started) * 1000)
                deadline = started + 5.0
                while True:
                    status, version = prober.get()
                    series.probe_requests += 1
                    if status != 200:
                        series.probe_failed += 1
                    if version == want:
                        series.latencies_ms.append((time.perf_counter() - started) * 1000)
                        break
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"{colour} never answered within 5 s of the switch")
                time.sleep(0.05)  # let the load settle between switches
    finally:
        prober.close()


# -- the reload approach, on a throwaway HAProxy ------------------------------------------------


class ReloadHaproxy:
    """A copy of the platform's ``haproxy.cfg`` on its own ports and sockets, with the replica
    slots written as static servers, switched by rewriting the map file and reloading."""

    def __init__(self, bench: Bench) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dops-rl-"))
        self.cfg = self.dir / "haproxy.cfg"
        self.map = self.dir / "web.map"
        self.admin = self.dir / "admin.sock"
        self.master = self.dir / "master.sock"
        self.prod_port = free_port()
        self.test_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._write(bench)

    def _write(self, bench: Bench) -> None:
        text = bench.paths.haproxy_cfg.read_text(encoding="utf-8")
        ports = {c: bench.replica_ports(c) for c in VERSIONS}
        out: list[str] = []
        backend = ""
        for line in text.splitlines():
            s = line.strip()
            if s.startswith(("log ", "log-format", "server-state-file", "load-server-state")):
                continue  # keep the platform's metrics receiver out of this
            if s.startswith("stats socket"):
                line = f"  stats socket {self.admin} level admin mode 600"
            elif s == f"bind 127.0.0.1:{bench.prod_port}":
                line = f"  bind 127.0.0.1:{self.prod_port}"
            elif s == f"bind 127.0.0.1:{bench.test_port}":
                line = f"  bind 127.0.0.1:{self.test_port}"
            elif s.startswith("use_backend"):
                line = line.replace(str(bench.paths.map_file("web")), str(self.map))
            elif s.startswith("backend "):
                backend = s.split()[1]
            elif s.startswith("server-template"):
                m = re.match(r"server-template \S+ \S+ \S+ disabled (.*)", s)
                if m is None:
                    raise RuntimeError(f"unexpected server-template line: {s}")
                out += [
                    f"  server s{i} 127.0.0.1:{p} {m.group(1)}"
                    for i, p in enumerate(ports[backend], 1)
                ]
                continue
            out.append(line)
        self.cfg.write_text("\n".join(out) + "\n", encoding="utf-8")
        self.write_map("web-blue")

    def write_map(self, colour: str) -> None:
        tmp = self.map.with_suffix(".tmp")
        tmp.write_text(f"prod {colour}\ntest web-green\n", encoding="utf-8")
        tmp.replace(self.map)

    def validate_ms(self) -> float:
        started = time.perf_counter()
        subprocess.run(["haproxy", "-c", "-q", "-f", str(self.cfg)], check=True)
        return (time.perf_counter() - started) * 1000

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["haproxy", "-W", "-S", f"{self.master},mode,600", "-f", str(self.cfg)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self.admin.exists, timeout_s=10, what="throwaway HAProxy up")

    def switch(self, colour: str) -> None:
        """Rewrite the map file, then ``reload`` through the master socket."""
        self.write_map(colour)
        # The master re-executes itself on a reload and refuses its socket meanwhile: the
        # next reload retries (bounded), and that wait is part of this approach's cost.
        deadline = time.perf_counter() + 5.0
        while True:
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.settimeout(5.0)
                    sock.connect(str(self.master))
                    sock.sendall(b"reload\n")
                    with contextlib.suppress(OSError):
                        sock.recv(4096)
                return
            except (ConnectionRefusedError, FileNotFoundError):
                if time.perf_counter() > deadline:
                    raise
                time.sleep(0.005)

    def workers(self) -> int:
        import psutil

        if self.proc is None:
            return 0
        return len(psutil.Process(self.proc.pid).children())

    def stop(self) -> None:
        import psutil

        if self.proc is not None:
            pids = [c.pid for c in psutil.Process(self.proc.pid).children()]
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            for pid in pids:
                with contextlib.suppress(psutil.NoSuchProcess):
                    psutil.Process(pid).kill()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def reload_haproxy(bench: Bench) -> Iterator[ReloadHaproxy]:
    rh = ReloadHaproxy(bench)
    try:
        rh.start()
        yield rh
    finally:
        rh.stop()


# -- the run -------------------------------------------------------------------------------------


def under_load(
    port: int,
    switch: Callable[[str], None],
    round_trips: int,
    connections: int,
    seconds: float,
) -> tuple[Series, WrkResult]:
    series = Series()
    wrk = start_wrk(f"http://127.0.0.1:{port}/", seconds=seconds, connections=connections)
    try:
        time.sleep(1.0)  # wrk at full rate before the first switch
        measure_switches(switch, port, round_trips, series)
    finally:
        result = wrk.result()
    return series, result


def measure(round_trips: int = 20, connections: int = 16) -> dict[str, Any]:
    with platform() as bench:
        bench.start_colours(VERSIONS, replicas=2)
        mapfile = bench.paths.map_file("web")
        bench.runtime.set_map(mapfile, "prod", "web-blue")

        def set_map(colour: str) -> None:
            bench.runtime.set_map(mapfile, "prod", colour)

        def via_driver(colour: str) -> None:
            bench.traffic.switch_listener("web-prod", colour)

        # a window long enough for the switches even on a slow machine; wrk stops on its own
        seconds = 4.0 + round_trips * 0.6
        idle_map, idle_driver = Series(), Series()
        measure_switches(set_map, bench.prod_port, round_trips, idle_map)
        measure_switches(via_driver, bench.prod_port, round_trips, idle_driver)
        load_map, wrk_map = under_load(bench.prod_port, set_map, round_trips, connections, seconds)
        load_driver, wrk_driver = under_load(
            bench.prod_port, via_driver, round_trips, connections, seconds
        )
        with reload_haproxy(bench) as rh:
            validate_ms = rh.validate_ms()
            idle_reload = Series()
            measure_switches(rh.switch, rh.prod_port, round_trips, idle_reload)
            load_reload, wrk_reload = under_load(
                rh.prod_port, rh.switch, round_trips, connections, seconds
            )
            lingering = rh.workers()
        # the platform is left as it was found: prod on blue, map file agreeing
        bench.traffic.switch_listener("web-prod", "web-blue")

    rows = {
        "set_map": {"idle": idle_map.summary(), "load": load_map.summary(), "wrk": wrk_map},
        "driver": {
            "idle": idle_driver.summary(),
            "load": load_driver.summary(),
            "wrk": wrk_driver,
        },
        "reload": {"idle": idle_reload.summary(), "load": load_reload.summary(), "wrk": wrk_reload},
    }
    out: dict[str, Any] = {
        "round_trips": round_trips,
        "connections": connections,
        "goal_idle_ms": GOAL_IDLE_MS,
        "goal_load_ms": GOAL_LOAD_MS,
        "haproxy_check_ms": round(validate_ms, 1),
        "reload_workers_alive_after": lingering,
    }
    for name, r in rows.items():
        wrk = r["wrk"]
        assert isinstance(wrk, WrkResult)
        out[name] = {"idle": r["idle"], "load": r["load"], "wrk": wrk.to_json()}
    m, rl = out["set_map"], out["reload"]
    out["ratio_reload_over_set_map"] = {
        "idle_p50": round(rl["idle"]["p50_ms"] / m["idle"]["p50_ms"], 1),
        "load_p50": round(rl["load"]["p50_ms"] / m["load"]["p50_ms"], 1),
    }
    out["meets_goal"] = {
        "failed_requests": m["wrk"]["failed"] + m["load"]["probe_failed"] == 0,
        "idle": m["idle"]["max_ms"] <= GOAL_IDLE_MS,
        "load": m["load"]["max_ms"] <= GOAL_LOAD_MS,
    }
    return out


def _yes(ok: bool) -> str:
    return "met" if ok else "**not met**"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    r = measure(args.round_trips, args.connections)
    labels = {
        "set_map": "`set map` on the admin socket",
        "driver": "`HaproxyTraffic.switch_listener` (daemon RPC + `set map` + `show map`)",
        "reload": "rewrite map file + `reload` (throwaway HAProxy)",
    }
    table = [
        "| approach | idle p50 | idle max | load p50 | load max | requests under load "
        "| failed (wrk + probe) | rate | wrk p99 | command alone under load: p50 / max |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label in labels.items():
        d = r[key]
        failed = d["wrk"]["failed"] + d["load"]["probe_failed"] + d["idle"]["probe_failed"]
        table.append(
            f"| {label} | {d['idle']['p50_ms']} ms | {d['idle']['max_ms']} ms "
            f"| {d['load']['p50_ms']} ms | {d['load']['max_ms']} ms "
            f"| {d['wrk']['requests'] + d['load']['probe_requests']:,} | {failed} "
            f"| {d['wrk']['rps']:,.0f}/s | {d['wrk']['latency_ms']['p99']} ms "
            f"| {d['load']['command_p50_ms']} ms / {d['load']['command_max_ms']} ms |"
        )
        print(table[-1])
    ratio = r["ratio_reload_over_set_map"]
    goals = r["meets_goal"]
    print(f"reload / set map (p50): idle {ratio['idle_p50']}x, under load {ratio['load_p50']}x")
    r["load_1m"] = round(os.getloadavg()[0], 2)
    path = write_result("switch", r)
    n = r["round_trips"] * 2
    update_section(
        "Listener switch",
        f"""\
Production listener flipped blue -> green and back {r["round_trips"]} times ({n} switches)
per approach and condition; blue and green run 2 replicas each with different versions.
Latency: from sending the command to the first response from the new colour, measured by one
keep-alive client asking `/` in a loop. Under load: `wrk -t2 -c{r["connections"]}` (closed loop,
the highest rate this machine sustains) through the same listener for the whole series.

{chr(10).join(table)}

The last column is the switch command alone (until it returned); the rest of a switch's time
is the probe's next request, which under load waits in line with wrk's like any other (wrk's
own p99 is in the table). Machine load (1 min) at the end: {r["load_1m"]}.

Goals for `set map`: 0 failed requests — {_yes(goals["failed_requests"])}; ≤ {GOAL_IDLE_MS:g} ms
idle — {_yes(goals["idle"])}; ≤ {GOAL_LOAD_MS:g} ms under load — {_yes(goals["load"])}.
Reload / `set map`, ratio of p50s: {ratio["idle_p50"]}x idle, {ratio["load_p50"]}x under load.
The reload figures leave out the `haproxy -c` a safe reload needs first
({r["haproxy_check_ms"]} ms here); after the series {r["reload_workers_alive_after"]} HAProxy
worker(s) of the throwaway instance were alive (old workers linger while clients hold
connections). The reload instance is a copy of the platform's config on its own ports with
the replica slots written as static servers; the platform itself is never reloaded.

Produced by: `.venv/bin/python bench/switch.py` (raw: `bench/results/{path.name}`).
""",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
