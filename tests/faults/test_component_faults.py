"""Component faults during a blue-green deploy under a loopback load, on the local platform
(real HAProxy, real replicas, the real metrics collector, a real PostgreSQL, a real size-limited
file system): HAProxy killed, a replica killed, the state store's PostgreSQL stopped and
started, the metrics collector stopped, the state directory's disk full, and the PagerDuty and
e-mail receivers down. Each test asserts the outcome, how many requests of the load failed,
and what the user was told; ``docs/reliability.md`` keeps the table (``make faults``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from deployops.store import StateStore
from tests.e2e.conftest import DEPLOYOPS, Project, running_project
from tests.faults.component_support import Load, long_fault, loopback_load, wait_until
from tests.fixtures_local import ENV

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

# Long enough to act in the middle of the watch after the switch.
SLOW_WATCH = {"health_timeout": 20, "stability_window": 8, "sample_interval": 0.5}


@dataclass
class Deploy:
    """A ``deployops deploy`` running in the background."""

    project: Project
    proc: subprocess.Popen[str]
    started: float
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0

    def wait(self, timeout: float = 240) -> int:
        self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        self.seconds = time.monotonic() - self.started
        return self.proc.returncode

    def deployment_id(self, store: StateStore) -> str:
        def found() -> bool:
            return bool(self._newest(store))

        wait_until(found, timeout_s=60, what="the deployment recorded")
        return self._newest(store)

    def _newest(self, store: StateStore) -> str:
        recs = store.list_deployments(environment=ENV, limit=1)
        return recs[0].id if recs and recs[0].status == "running" else ""


def deploy_in_background(p: Project, version: str, env: dict[str, str] | None = None) -> Deploy:
    proc = subprocess.Popen(
        [DEPLOYOPS, "-c", str(p.path), "-e", ENV, "deploy", "--version", version],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    return Deploy(p, proc, time.monotonic())


def wait_step(store: StateStore, dep_id: str, step: str, timeout_s: float = 60) -> None:
    """Until the deployment has started ``step`` (by step type)."""

    def started() -> bool:
        return any(s.name == step for s in store.steps_for(dep_id))

    wait_until(started, timeout_s=timeout_s, what=f"step {step} of {dep_id} started")


@contextmanager
def state_store(p: Project) -> Iterator[StateStore]:
    store = StateStore.open(p.config.state_url())
    try:
        yield store
    finally:
        store.close()


def report(name: str, load: Load, dep: Deploy, **extra: Any) -> None:
    print(
        f"\n{name}: deploy exit {dep.proc.returncode} in {dep.seconds:.1f}s; requests "
        f"{load.sent}, failed {load.failed} {load.errors}; versions {dict(load.versions)}; "
        + "; ".join(f"{k} {v}" for k, v in extra.items())
    )


def probe_versions(p: Project, n: int = 20) -> list[str]:
    """The version each of ``n`` requests through the production listener got ("" = failed)."""
    import httpx

    out = []
    with httpx.Client(timeout=5.0) as client:
        for _ in range(n):
            try:
                r = client.get(f"http://127.0.0.1:{p.config.services['web'].port}/")
                out.append(str(r.json()["version"]) if r.status_code == 200 else "")
            except (httpx.HTTPError, ValueError, KeyError):
                out.append("")
    return out


@long_fault
def test_haproxy_killed_during_the_watch_is_restarted_by_the_platform() -> None:
    """The daemon watches HAProxy (every 0.1 s) and restarts it with the listeners where they
    were and the replicas that were healthy in service at once. The deploy carries on and
    succeeds; the requests that fail are those sent while no HAProxy listened."""
    with running_project(blue_green=SLOW_WATCH) as p, state_store(p) as store:
        assert p.cli("deploy", "--version", "1.0.0", timeout=300).returncode == 0
        with loopback_load(p.config.services["web"].port) as load:
            dep = deploy_in_background(p, "1.0.1")
            dep_id = dep.deployment_id(store)
            wait_step(store, dep_id, "Observe")
            time.sleep(1.0)
            old = p.status()["haproxy_pid"]
            killed_at = time.monotonic()
            os.kill(old, signal.SIGKILL)

            def restarted() -> bool:
                st = p.status()
                return bool(st["haproxy_pid"] != old and st.get("haproxy_running"))

            back_s = wait_until(restarted, timeout_s=30, what="HAProxy restarted")
            code = dep.wait()
        in_window = load.failed_between(killed_at, killed_at + back_s + 2.0)
        report("HAProxy killed", load, dep, restarted_in=f"{back_s:.1f}s", failed_then=in_window)
        assert code == 0, dep.stderr[-3000:]
        assert "web 1.0.1 is live" in dep.stdout + dep.stderr
        # Only while HAProxy was away: about 20 requests a second for a fraction of a second.
        assert load.failed == in_window, load.errors
        assert load.failed <= 20, load.errors
        assert probe_versions(p) == ["1.0.1"] * 20
        # What the operator is told: the platform's event and log line.
        (ev,) = store.events(kind="platform.haproxy_restarted")
        assert "restarted it" in ev.message
        logs = p.cli("logs", "web", "--platform", "--grep", "HAProxy")
        assert "HAProxy exited; restarting it" in logs.stdout + logs.stderr


@long_fault
def test_a_replica_killed_during_the_watch_is_replaced_and_the_deploy_succeeds() -> None:
    """SIGKILL to one of the two new replicas while it takes traffic: the supervisor replaces
    it, HAProxy's checks take it out meanwhile; one replica of two down is not a breach of
    the health-check rule (more than 50 %)."""
    with running_project(blue_green=SLOW_WATCH) as p, state_store(p) as store:
        assert p.cli("deploy", "--version", "1.0.0", timeout=300).returncode == 0
        with loopback_load(p.config.services["web"].port) as load:
            dep = deploy_in_background(p, "1.0.1")
            dep_id = dep.deployment_id(store)
            wait_step(store, dep_id, "Observe")
            time.sleep(1.0)
            (victim,) = [
                t["pid"] for t in p.service("web-green")["tasks"] if t["state"] == "RUNNING"
            ][:1]
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)

            def replaced() -> bool:
                svc = p.service("web-green")
                pids = {t["pid"] for t in svc["tasks"] if t["state"] == "RUNNING"}
                return victim not in pids and svc["healthy"] >= 2

            back_s = wait_until(replaced, timeout_s=30, what="the killed replica replaced")
            code = dep.wait()
        report("replica killed", load, dep, replaced_in=f"{back_s:.1f}s")
        assert code == 0, dep.stderr[-3000:]
        assert load.failed == load.failed_between(killed_at, killed_at + back_s), load.errors
        assert load.failed <= 5, load.errors
        assert probe_versions(p) == ["1.0.1"] * 20
        events = store.events(kind="task.failed") + store.events(kind="task.restarted")
        assert any("web-green" in e.message for e in events), [e.message for e in events]


@contextmanager
def own_postgres() -> Iterator[Any]:
    from pg import PgCluster

    cluster = PgCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _poll(store: StateStore, fn: Any) -> Any:
    """``fn(store)``, or None while the store is unreachable."""
    from deployops.errors import DriverError

    try:
        return fn(store)
    except DriverError:
        return None


RECONNECT_S = 5.0


@long_fault
def test_state_store_postgres_stopped_and_started_mid_deploy() -> None:
    """The state store on PostgreSQL, stopped (``pg_ctl -m immediate``: connections cut)
    during the watch after the switch. A short outage (2 s, within ``state.reconnect``) is
    waited out: the deploy succeeds. A long one (12 s) stops the deploy with an error that
    names the database and ``deployops resume``; traffic stays on the healthy new version
    meanwhile, and once PostgreSQL is back the resume finishes the deploy."""
    with own_postgres() as pg:
        url = pg.create_database("state")
        top = {"state": {"url": url, "reconnect": f"{RECONNECT_S:g}s"}}
        with running_project(blue_green=SLOW_WATCH, top=top) as p, state_store(p) as store:
            assert p.cli("deploy", "--version", "1.0.0", timeout=300).returncode == 0

            # 1. A short outage: waited out.
            with loopback_load(p.config.services["web"].port) as short_load:
                short = deploy_in_background(p, "1.0.1")
                wait_step(store, short.deployment_id(store), "Observe")
                time.sleep(1.0)
                pg.halt()
                time.sleep(2.0)
                pg.resume()
                short_code = short.wait()
            report("postgres down 2 s", short_load, short)
            assert short_code == 0, short.stderr[-3000:]
            assert "unreachable; waiting up to 5s" in short.stderr
            assert short_load.failed == 0, short_load.errors

            # 2. A long outage: the deploy stops, clearly; traffic stays where it was.
            with loopback_load(p.config.services["web"].port) as long_load:
                dep = deploy_in_background(p, "1.0.2")
                dep_id = dep.deployment_id(store)
                wait_step(store, dep_id, "Observe")
                time.sleep(1.0)
                pg.halt()
                down_at = time.monotonic()
                code = dep.wait(timeout=120)
                stopped_after = time.monotonic() - down_at
                during = probe_versions(p)
                time.sleep(max(0.0, 12.0 - (time.monotonic() - down_at)))
                pg.resume()
            report("postgres down 12 s", long_load, dep, deploy_stopped_after=stopped_after)
            assert code == 1, dep.stderr[-3000:]
            assert "state-store: query failed: unreachable for" in dep.stderr
            assert f"resume {dep_id}` finishes it" in dep.stderr
            assert long_load.failed == 0, long_load.errors
            assert during == ["1.0.2"] * 20  # switched before the outage: the new version
            rec = store.get_deployment(dep_id)
            assert rec is not None and rec.status == "running"

            resumed = p.cli("resume", dep_id, timeout=300)
            assert resumed.returncode == 0, resumed.stderr[-3000:]
            rec = store.get_deployment(dep_id)
            assert rec is not None and rec.status == "succeeded"
            assert probe_versions(p) == ["1.0.2"] * 20
            assert json.loads(p.cli("-o", "json", "lock", "list").stdout) == []


def daemon_call(p: Project, method: str, **params: Any) -> Any:
    from deployops.drivers.local.client import DaemonClient
    from deployops.drivers.local.paths import LocalPaths

    client = DaemonClient(LocalPaths.of(p.config, ENV), ENV)
    try:
        return client.call(method, **params)
    finally:
        client.close()


@long_fault
def test_metrics_collector_stopped_during_the_watch_is_no_data_never_a_pass() -> None:
    """The local platform's metrics collector stopped as the watch after the switch begins:
    the rules say they have no data, the data they were judged on before no longer counts,
    the synthetic requests meant to judge them give no data either, and the deploy is rolled
    back as not judged — never passed by default. The old version serves throughout."""
    with running_project(blue_green=SLOW_WATCH) as p, state_store(p) as store:
        assert p.cli("deploy", "--version", "1.0.0", timeout=300).returncode == 0
        with loopback_load(p.config.services["web"].port) as load:
            dep = deploy_in_background(p, "1.0.1")
            dep_id = dep.deployment_id(store)
            wait_step(store, dep_id, "Observe")
            assert daemon_call(p, "metrics", action="stop") == {"running": False}
            code = dep.wait()
            after = probe_versions(p)
        report("metrics collector stopped", load, dep)
        assert daemon_call(p, "metrics", action="start") == {"running": True}
        told = dep.stdout + dep.stderr
        assert code == 3, told[-3000:]  # rolled back
        assert "was not judged" in told and "no data" in told
        assert "a deployment without evidence is not a success" in told
        assert "judged 5 of 5" not in told
        assert load.failed == 0, load.errors
        assert after == ["1.0.0"] * 20
        rec = store.get_deployment(dep_id)
        assert rec is not None and rec.status == "rolled_back"
        assert store.events(kind="platform.metrics_stopped")


@contextmanager
def small_state_disk(size_mb: int = 64) -> Iterator[dict[str, Any]]:
    """A size-limited tmpfs mounted on the project's state directory (``.deployops``) before
    the platform starts; ``fill()`` fills it, ``free()`` frees it. Root only (mount)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited file system on the state directory needs root")
    where: dict[str, Any] = {}

    def mount(root: Any) -> None:
        target = root / ".deployops"
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs on the state directory: {done.stderr.strip()}")
        where["target"] = target
        where["root"] = root

    def fill() -> int:
        filler = where["target"] / "filler"
        written = 0
        with filler.open("wb") as f:
            chunk = b"\0" * (1 << 20)
            try:
                while True:
                    f.write(chunk)
                    f.flush()
                    written += len(chunk)
            except OSError:
                pass
        return written

    def free() -> None:
        (where["target"] / "filler").unlink(missing_ok=True)

    where.update(mount=mount, fill=fill, free=free)
    try:
        yield where
    finally:
        if "target" in where:
            subprocess.run(["umount", "-l", str(where["target"])], check=False)
            import shutil

            shutil.rmtree(where["root"], ignore_errors=True)


def df_free(path: Any) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@long_fault
def test_the_state_directory_disk_full_mid_deploy() -> None:
    """The state directory (``.deployops``: the SQLite state store, the platform's files and
    logs) on a 64 MB tmpfs, filled to the last byte during the watch after the switch. The
    deploy stops with an error saying the disk is full and how to go on; the replicas keep
    serving the new version; once space is freed, ``deployops resume`` finishes the deploy."""
    with (
        small_state_disk() as disk,
        running_project(blue_green=SLOW_WATCH, before_up=disk["mount"]) as p,
        state_store(p) as store,
    ):
        assert p.cli("deploy", "--version", "1.0.0", timeout=300).returncode == 0
        with loopback_load(p.config.services["web"].port) as load:
            dep = deploy_in_background(p, "1.0.1")
            dep_id = dep.deployment_id(store)
            wait_step(store, dep_id, "Observe")
            filled = disk["fill"]()
            code = dep.wait()
            during = probe_versions(p)
            disk["free"]()
        report("state disk full", load, dep, filled_mb=filled >> 20)
        assert filled > 0 and df_free(disk["target"]) > 0
        assert code == 1, dep.stderr[-3000:]
        assert "state-store: query failed: database or disk is full" in dep.stderr
        assert "is full: free space there" in dep.stderr
        assert f"`deployops resume {dep_id}` finishes it" in dep.stderr
        assert load.failed == 0, load.errors
        assert during == ["1.0.1"] * 20
        rec = store.get_deployment(dep_id)
        assert rec is not None and rec.status == "running"

        resumed = p.cli("resume", dep_id, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        rec = store.get_deployment(dep_id)
        assert rec is not None and rec.status == "succeeded"
        assert probe_versions(p) == ["1.0.1"] * 20
        assert json.loads(p.cli("-o", "json", "lock", "list").stdout) == []
