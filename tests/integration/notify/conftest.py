"""Fixtures: the loopback receivers of ``receivers.py``, started and stopped per test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from integration.notify.receivers import HttpReceiver, SmtpReceiver, free_port, make_handler


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
    rx = SmtpReceiver(port=free_port())
    controller = Controller(rx, hostname="127.0.0.1", port=rx.port)
    controller.start()
    yield rx
    controller.stop()
