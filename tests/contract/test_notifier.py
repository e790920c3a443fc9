"""Contract for the ``Notifier`` port, run on every channel: the in-memory one and Slack,
PagerDuty and e-mail against real loopback receivers (an HTTP server and an SMTP server that
record what they get), and SNS on a moto server (a topic with an SQS queue subscribed, read
back). What the receivers cannot show: the vendors' own rendering; for SNS, the topic's KMS
encryption, the subscribers' delivery (e-mail confirmation, HTTPS retries) and IAM.

Every channel delivers a notice with its title, text and fields, delivers its resolution
under the same key, and fails a delivery it cannot make with ``DriverError`` (which the
router records and retries) without showing the channel's credential.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from deployops.clock import SystemClock
from deployops.drivers.memory import MemoryNotifier
from deployops.errors import DriverError
from deployops.notify.email import EmailNotifier
from deployops.notify.pagerduty import PagerDutyNotifier
from deployops.notify.slack import SlackNotifier
from deployops.ports import Notifier
from deployops.secret import Secret
from tests.integration.notify.receivers import HttpReceiver, SmtpReceiver, free_port, make_handler
from tests.support.moto_server import moto_server

pytestmark = pytest.mark.integration

HOOK_PATH = "/services/T000/B000/contract-hook-secret"
ROUTING_KEY = "R0UT1NGKEYcontract0000000000000"


@dataclass
class Channel:
    notifier: Notifier
    down: Notifier  # the same channel pointed at something that does not answer
    messages: Callable[[], list[str]]  # every delivery so far, as text
    credential: str


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
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
def smtp_receiver() -> Iterator[SmtpReceiver]:
    from aiosmtpd.controller import Controller

    rx = SmtpReceiver(port=free_port())
    controller = Controller(rx, hostname="127.0.0.1", port=rx.port)
    controller.start()
    yield rx
    controller.stop()


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


SNS_SECRET_KEY = "contract-sns-secret-key-000000000000"
_topics = iter(range(10_000))


def _sns_channel(url: str) -> Channel:
    """An SNS topic with an SQS queue subscribed (raw delivery off: the SNS envelope)."""
    import boto3
    from botocore.config import Config

    from deployops.drivers.aws.sns import SnsNotifier

    def client(service: str, endpoint: str) -> Any:
        return boto3.session.Session().client(
            service,
            region_name="ap-northeast-1",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key=SNS_SECRET_KEY,
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=2),
        )

    sns, sqs = client("sns", url), client("sqs", url)
    n = next(_topics)
    topic = sns.create_topic(Name=f"contract-alerts-{n}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"contract-alerts-{n}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    seen: list[str] = []

    def messages() -> list[str]:
        while True:
            got = sqs.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not got:
                return list(seen)
            for m in got:
                envelope = json.loads(m["Body"])
                seen.append(f"{envelope.get('Subject', '')}\n{envelope['Message']}")
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])

    down = SnsNotifier(client=client("sns", f"http://127.0.0.1:{free_port()}"), topic_arn=topic)
    return Channel(SnsNotifier(client=sns, topic_arn=topic), down, messages, SNS_SECRET_KEY)


@pytest.fixture(params=["memory", "slack", "pagerduty", "email", "sns"])
def channel(request: pytest.FixtureRequest) -> Iterator[Channel]:
    clock = SystemClock()
    http = httpx.Client(trust_env=False)
    nowhere = f"http://127.0.0.1:{free_port()}"
    try:
        if request.param == "memory":
            mem = MemoryNotifier()
            yield Channel(
                mem, MemoryNotifier(down=True), lambda: [json.dumps(m) for m in mem.sent], ""
            )
        elif request.param == "slack":
            rx: HttpReceiver = request.getfixturevalue("http_receiver")
            yield Channel(
                SlackNotifier(webhook_url=Secret(rx.url(HOOK_PATH)), http=http, clock=clock),
                SlackNotifier(webhook_url=Secret(nowhere + HOOK_PATH), http=http, clock=clock),
                lambda: [json.dumps(b) for b in rx.bodies(HOOK_PATH)],
                HOOK_PATH,
            )
        elif request.param == "pagerduty":
            rx = request.getfixturevalue("http_receiver")
            yield Channel(
                PagerDutyNotifier(
                    routing_key=Secret(ROUTING_KEY),
                    http=http,
                    clock=clock,
                    events_url=rx.url("/v2/enqueue"),
                ),
                PagerDutyNotifier(
                    routing_key=Secret(ROUTING_KEY),
                    http=http,
                    clock=clock,
                    events_url=nowhere + "/v2/enqueue",
                ),
                lambda: [json.dumps(b) for b in rx.bodies("/v2/enqueue")],
                ROUTING_KEY,
            )
        elif request.param == "sns":
            yield _sns_channel(request.getfixturevalue("moto_url"))
        else:
            smtp: SmtpReceiver = request.getfixturevalue("smtp_receiver")

            def mails() -> list[str]:
                out = []
                for _from, _to, msg in smtp.messages:
                    parts = [str(msg["Subject"])]
                    for part in msg.walk():
                        payload = part.get_payload(decode=True)
                        if isinstance(payload, bytes):
                            parts.append(payload.decode("utf-8", "replace"))
                    out.append("\n".join(parts))
                return out

            yield Channel(
                EmailNotifier(
                    smtp_host="127.0.0.1",
                    smtp_port=smtp.port,
                    sender="deployops@example.com",
                    to=["ops@example.com"],
                    clock=clock,
                ),
                EmailNotifier(
                    smtp_host="127.0.0.1",
                    smtp_port=free_port(),
                    sender="deployops@example.com",
                    to=["ops@example.com"],
                    clock=clock,
                    timeout=2.0,
                ),
                mails,
                "",
            )
    finally:
        http.close()


def test_the_channel_satisfies_the_port(channel: Channel) -> None:
    assert isinstance(channel.notifier, Notifier)
    assert channel.notifier.name


def test_a_notice_arrives_with_its_title_text_and_fields(channel: Channel) -> None:
    channel.notifier.send(
        severity="critical",
        title="web 2.0.0 rolled back in production",
        text="error-rate 20.3 % over 3 periods",
        dedup_key="dep-20261202-0500-aaaa",
        fields={"service": "web", "version": "2.0.0"},
        kind="deployment.rolled_back",
    )
    (message,) = channel.messages()
    assert "web 2.0.0 rolled back in production" in message
    assert "error-rate 20.3 %" in message
    assert "2.0.0" in message


def test_the_resolution_follows_under_the_same_key(channel: Channel) -> None:
    key = "alarm:LowHealthyHosts:web"
    channel.notifier.send(
        severity="critical",
        title="LowHealthyHosts on web",
        text="1 healthy host",
        dedup_key=key,
        fields={},
        kind="alarm.alarm",
    )
    channel.notifier.resolve(
        dedup_key=key, title="LowHealthyHosts on web", severity="critical", kind="alarm.ok"
    )
    first, second = channel.messages()
    assert "LowHealthyHosts on web" in first
    assert "LowHealthyHosts" in second
    assert first != second  # a resolution is its own message, not a repeat


def test_an_unreachable_channel_fails_with_driver_error_without_its_credential(
    channel: Channel,
) -> None:
    with pytest.raises(DriverError) as err:
        channel.down.send(
            severity="warning",
            title="x",
            text="y",
            dedup_key="k",
            fields={},
            kind="decision",
        )
    if channel.credential:
        assert channel.credential not in str(err.value)
        assert channel.credential not in (err.value.hint or "")
