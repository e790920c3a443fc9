"""Alarm evaluation on a virtual clock with real loopback receivers (MON-1, MON-2, IAC-5).

Each of the guide's five alarms goes OK -> ALARM -> OK: scale-out alarms add capacity, every
alarm notifies at its severity (critical pages PagerDuty, warnings go to Slack and e-mail), and
leaving ALARM resolves the incident with the same dedup key.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller as SmtpController

from deployops.clock import VirtualClock
from deployops.config.notifications import load_notifications
from deployops.domain.alarms import DEFAULT_ALARMS, AlarmState
from deployops.domain.model import MetricName, TaskDefinitionSpec
from deployops.domain.scaling import ScalingPolicy
from deployops.drivers.memory import MemoryCloud, MemoryCompute, MemoryTraffic
from deployops.engine.alarms import AlarmEvaluator, dedup_key
from deployops.engine.autoscaler import Autoscaler
from deployops.errors import NotFoundError
from deployops.notify import NotificationRouter, build_router, store_recorder
from deployops.secret import Secret
from deployops.store import StateStore
from tests.integration.notify.receivers import HttpReceiver, SmtpReceiver, free_port, make_handler
from tests.support.scripted_metrics import ScriptedMetrics

KEY = "R0UTINGKEY-alarms-0123456789"
SLACK_PATH = "/services/T0/B1/ALERTS"

# Values that keep each alarm OK, and values that breach it.
GOOD: dict[MetricName, float] = {
    MetricName.CPU: 40.0,
    MetricName.HTTP_5XX: 0.0,
    MetricName.HEALTHY_HOSTS: 4.0,
    MetricName.MEMORY: 50.0,
    MetricName.DB_CONNECTIONS: 20.0,
}
BAD: dict[str, tuple[MetricName, float]] = {
    "HighCPUUtilization": (MetricName.CPU, 92.0),
    "HighErrorRate": (MetricName.HTTP_5XX, 15.0),
    "LowHealthyHosts": (MetricName.HEALTHY_HOSTS, 1.0),
    "HighMemoryUsage": (MetricName.MEMORY, 90.0),
    "DatabaseConnections": (MetricName.DB_CONNECTIONS, 85.0),
}


@pytest.fixture
def http_rx() -> Iterator[HttpReceiver]:
    rx = HttpReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(rx))
    server.daemon_threads = True
    rx.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield rx
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def smtp_rx() -> Iterator[SmtpReceiver]:
    rx = SmtpReceiver(port=free_port())
    ctl = SmtpController(rx, hostname="127.0.0.1", port=rx.port)
    ctl.start()
    yield rx
    ctl.stop()


def _notifications(http_port: int, smtp_port: int) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        f"""
        channels:
          slack-alerts: {{type: slack, webhook_url: "secret://slack-alerts", channel: "#alerts"}}
          email-oncall:
            type: email
            smtp_host: 127.0.0.1
            smtp_port: {smtp_port}
            from: deployops@example.com
            to: oncall@example.com
          pagerduty:
            type: pagerduty
            routing_key: secret://pagerduty-key
            events_url: http://127.0.0.1:{http_port}/v2/enqueue
        routes:
          critical: [slack-alerts, email-oncall, pagerduty]
          warning: [slack-alerts, email-oncall]
        retry: {{attempts: 3, initial_backoff: 1s, max_backoff: 4s}}
        rate_limit: {{per_minute: 60, burst: 10}}
        """
    )
    return loaded


@dataclass
class World:
    clock: VirtualClock
    store: StateStore
    compute: MemoryCompute
    metrics: ScriptedMetrics
    evaluator: AlarmEvaluator
    router: NotificationRouter

    def desired(self) -> int:
        svc = self.compute.describe_service("web-blue")
        assert svc is not None
        return svc.desired

    def run(self, minutes: int) -> None:
        for _ in range(minutes):
            self.clock.advance(60)
            self.evaluator.evaluate()

    def state(self, alarm: str) -> str:
        rec = self.store.alarm_state("production", "web", alarm)
        assert rec is not None
        return rec.state


def _world(tmp_path: Path, http_rx: HttpReceiver, smtp_port: int) -> World:
    clock = VirtualClock()
    cloud = MemoryCloud(clock=clock)
    cloud.add_service_listeners("web", 18080)
    compute = MemoryCompute(cloud=cloud)
    traffic = MemoryTraffic(cloud=cloud)
    td = compute.register_task_definition(TaskDefinitionSpec("web", "1.0.0", 8000))
    compute.create_service(
        "web-blue", task_definition=td.ref, desired_count=4, target_group="web-blue"
    )
    metrics = ScriptedMetrics(clock=clock)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    secrets = {
        "slack-alerts": f"http://127.0.0.1:{http_rx.port}{SLACK_PATH}",
        "pagerduty-key": KEY,
    }

    def resolve(name: str) -> Secret:
        if name not in secrets:
            raise NotFoundError(f"no secret {name!r}")
        return Secret(secrets[name])

    router = build_router(
        load_notifications(_notifications(http_rx.port, smtp_port)),
        resolve=resolve,
        clock=clock,
        record=store_recorder(store, clock),
    )
    scaler = Autoscaler(
        policy=ScalingPolicy(),
        environment="production",
        services=["web"],
        compute=compute,
        traffic=traffic,
        metrics=metrics,
        store=store,
        clock=clock,
    )
    evaluator = AlarmEvaluator(
        alarms=DEFAULT_ALARMS,
        environment="production",
        services=["web"],
        metrics=metrics,
        traffic=traffic,
        store=store,
        clock=clock,
        notify=router.notify,
        scale_out=scaler.scale_out_for_alarm,
    )
    for metric, value in GOOD.items():
        metrics.set(metric, value)
    return World(clock, store, compute, metrics, evaluator, router)


@pytest.fixture
def world(tmp_path: Path, http_rx: HttpReceiver, smtp_rx: SmtpReceiver) -> Iterator[World]:
    w = _world(tmp_path, http_rx, smtp_rx.port)
    yield w
    w.router.close()
    w.store.close()


def test_mon1_alarms_start_insufficient_then_ok_without_notifying(
    world: World, http_rx: HttpReceiver
) -> None:
    world.metrics.set(MetricName.CPU, None)
    world.run(1)
    # No CPU data at all: INSUFFICIENT_DATA (CloudWatch's starting state is kept).
    assert world.state("HighCPUUtilization") == "INSUFFICIENT_DATA"
    world.metrics.set(MetricName.CPU, 40.0)
    world.run(2)
    assert {a.name: world.state(a.name) for a in DEFAULT_ALARMS} == {
        a.name: "OK" for a in DEFAULT_ALARMS
    }
    assert http_rx.requests == []


@pytest.mark.parametrize("name", list(BAD))
def test_mon1_each_alarm_goes_ok_alarm_ok_with_its_actions(
    world: World, http_rx: HttpReceiver, smtp_rx: SmtpReceiver, name: str
) -> None:
    alarm = next(a for a in DEFAULT_ALARMS if a.name == name)
    periods = alarm.rule.evaluation_periods
    world.run(2)
    assert world.state(name) == "OK"
    metric, bad = BAD[name]
    world.metrics.set(metric, bad)
    if periods > 1:
        world.run(periods - 1)
        assert world.state(name) == "OK", "one breaching period of two is not an alarm"
        world.run(1)
    else:
        world.run(1)
    assert world.state(name) == "ALARM"
    scaled = world.desired()
    world.metrics.set(metric, GOOD[metric])
    world.run(periods)
    assert world.state(name) == "OK"

    history = world.store.alarm_history(name, environment="production")
    assert [(h.previous, h.state) for h in history] == [
        ("INSUFFICIENT_DATA", "OK"),
        ("OK", "ALARM"),
        ("ALARM", "OK"),
    ]
    assert history[1].evidence["evaluation"]["verdict"] == "breaching"

    # IAC-5: the scale-out alarms add capacity; the others leave it alone.
    if name in ("HighCPUUtilization", "HighMemoryUsage"):
        assert scaled == 5
        (act,) = world.store.scaling_activities()
        assert act.cause == f"alarm:{name}"
        assert act.status == "succeeded"
    else:
        assert scaled == 4
        assert world.store.scaling_activities() == []

    # MON-2: Slack (#alerts, Block Kit) hears the alarm and its resolution ...
    slack = http_rx.bodies(SLACK_PATH)
    assert [b["channel"] for b in slack] == ["#alerts", "#alerts"]
    assert name in slack[0]["blocks"][0]["text"]["text"]
    assert slack[1]["blocks"][0]["text"]["text"].startswith(":white_check_mark: Resolved:")
    # ... and so does the on-call mailbox.
    subjects = [m["Subject"] for _f, _to, m in smtp_rx.messages]
    label = "CRITICAL" if name == "LowHealthyHosts" else "WARNING"
    assert subjects[0].startswith(f"[{label}] {name} in ALARM")
    assert subjects[1].startswith("[RESOLVED]")
    # PagerDuty only for the critical alarm: trigger, then resolve with the same dedup key.
    pd = http_rx.bodies("/v2/enqueue")
    if name == "LowHealthyHosts":
        key = dedup_key("production", "web", name)
        assert [(e["event_action"], e["dedup_key"]) for e in pd] == [
            ("trigger", key),
            ("resolve", key),
        ]
        assert pd[0]["routing_key"] == KEY
        assert pd[0]["payload"]["severity"] == "critical"
    else:
        assert pd == []


def test_mon2_receiver_down_never_blocks_evaluation_and_is_recorded(
    tmp_path: Path, http_rx: HttpReceiver
) -> None:
    """The SMTP server is not running: the alarm still changes state and scales out; the
    failed delivery is a stored event."""
    w = _world(tmp_path, http_rx, free_port())
    try:
        w.run(2)
        w.metrics.set(MetricName.CPU, 95.0)
        w.run(2)
        assert w.state("HighCPUUtilization") == AlarmState.ALARM.value
        assert w.desired() == 5
        failed = w.store.events(kind="notify.failed")
        assert [e.data["channel"] for e in failed] == ["email-oncall"]
        assert failed[0].data["attempts"] == 3  # retried with backoff first
        assert len(http_rx.bodies(SLACK_PATH)) == 1
    finally:
        w.router.close()
        w.store.close()


def test_mon1_failing_metric_queries_are_insufficient_data_not_alarm(world: World) -> None:
    world.run(2)
    world.metrics.fail.add(MetricName.HEALTHY_HOSTS)
    world.run(3)
    current = world.store.alarm_state("production", "web", "LowHealthyHosts")
    assert current is not None
    assert current.state == "INSUFFICIENT_DATA"
    assert "unavailable" in current.reason
    assert world.store.events(kind="notify.sent") == []  # not an alarm: nobody is paged
