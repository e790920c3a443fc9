"""Real receivers on loopback: an HTTP server standing for Slack and PagerDuty, and an SMTP
server (aiosmtpd, in-process). Each records exactly what it was sent."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["HttpReceiver", "SmtpReceiver", "free_port", "make_handler"]


@dataclass
class HttpReceiver:
    """``script[path]`` is a list of ``(status, body, headers)`` answered in order; after that
    Slack paths answer ``200 ok`` and ``/v2/enqueue`` answers PagerDuty's ``202``."""

    port: int = 0
    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    script: dict[str, list[tuple[int, str, dict[str, str]]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str) -> list[Any]:
        with self.lock:
            return [b for p, _h, b in self.requests if p == path]


def make_handler(rx: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            body = json.loads(raw) if raw else None
            with rx.lock:
                rx.requests.append((self.path, dict(self.headers.items()), body))
                queue = rx.script.get(self.path)
                answer = queue.pop(0) if queue else None
            if answer is None:
                if self.path == "/v2/enqueue":
                    dedup = body.get("dedup_key", "") if isinstance(body, dict) else ""
                    answer = (
                        202,
                        json.dumps(
                            {"status": "success", "message": "Event processed", "dedup_key": dedup}
                        ),
                        {"Content-Type": "application/json"},
                    )
                else:
                    answer = (200, "ok", {"Content-Type": "text/plain"})
            status, text, headers = answer
            data = text.encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@dataclass
class SmtpReceiver:
    """Accepts mail; refuses recipients starting ``refuse@`` (550) and ``busy@`` (451)."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.startswith("refuse@"):
            return "550 5.1.1 mailbox unavailable"
        if address.startswith("busy@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else (content or "").encode()
        self.messages.append(
            (str(envelope.mail_from), list(envelope.rcpt_tos), message_from_bytes(raw))
        )
        return "250 Message accepted for delivery"


def free_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
