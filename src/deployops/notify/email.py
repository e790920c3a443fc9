"""E-mail over SMTP to the on-call address (MON-2, DEP-7).

    EmailNotifier(smtp_host="smtp.internal", smtp_port=587, sender="deployops@example.com",
                  to=("oncall@example.com",), starttls=True, username="deployops",
                  password=Secret(pw), clock=clock)
        .send(severity="warning", title="HighCPUUtilization", text="CPU 83 % for 2 periods",
              dedup_key="alarm:HighCPUUtilization", fields={"service": "web"})

Subject ``[SEVERITY] title`` (``[RESOLVED] title`` for a resolve), a plain-text body with the
text and one ``name: value`` line per field. A server that refuses with a 4xx code (try later)
is retried; 5xx (permanent) is not.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import ClassVar

from deployops.clock import Clock
from deployops.notify._channel import Channel
from deployops.notify._http import NotifyError, scrub
from deployops.secret import Secret

__all__ = ["EmailNotifier"]


def _smtp_code_retryable(code: int) -> bool:
    return 400 <= code < 500


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


class EmailNotifier(Channel[EmailMessage]):
    """Sends one message per notice through ``smtplib.SMTP`` (a new connection each time:
    notices are rare and a long-lived SMTP session would go stale)."""

    name: ClassVar[str] = "email"

    def __init__(
        self,
        *,
        smtp_host: str,
        smtp_port: int = 25,
        sender: str,
        to: Sequence[str],
        clock: Clock,
        starttls: bool = False,
        username: str | None = None,
        password: Secret | None = None,
        timeout: float = 10.0,
        smtp_factory: Callable[..., smtplib.SMTP] = smtplib.SMTP,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.smtp_host = smtp_host
        self.smtp_port = smtp_port
        self.sender = sender
        self.to = tuple(to)
        self._clock = clock
        self.starttls = starttls
        self.username = username
        self._password = password
        self.timeout = timeout
        self._smtp_factory = smtp_factory
        self._ssl_context = ssl_context

    def __repr__(self) -> str:
        return (
            f"EmailNotifier(smtp={self.smtp_host}:{self.smtp_port}, to={list(self.to)!r}, "
            f"password={'[REDACTED]' if self._password else None})"
        )

    def message(
        self,
        *,
        severity: str,
        title: str,
        text: str,
        dedup_key: str,
        fields: Mapping[str, str],
        kind: str = "",
        resolved: bool = False,
    ) -> EmailMessage:
        label = "RESOLVED" if resolved else severity.upper()
        msg = EmailMessage()
        msg["Subject"] = f"[{label}] {title}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Date"] = format_datetime(self._clock.now())
        msg["Message-ID"] = make_msgid(domain=self.sender.rsplit("@", 1)[-1])
        # Lets mail filters pair a resolve with its alarm.
        msg["X-Deployops-Dedup-Key"] = dedup_key
        lines = [f"Resolved: {title}" if resolved else title, ""]
        if text:
            lines += [text, ""]
        width = max((len(k) for k in fields), default=0)
        lines += [f"{k.ljust(width)}: {v}" for k, v in fields.items()]
        if fields:
            lines.append("")
        lines.append(f"severity: {severity}")
        if kind:
            lines.append(f"kind: {kind}")
        lines.append(f"dedup key: {dedup_key}")
        msg.set_content("\n".join(lines) + "\n")
        return msg

    _compose = message

    def _deliver(self, msg: EmailMessage) -> None:
        secrets = (self._password,)
        where = f"{self.smtp_host}:{self.smtp_port}"
        try:
            with self._smtp_factory(self.smtp_host, self.smtp_port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                if self.username and self._password is not None:
                    smtp.login(self.username, self._password.reveal())
                refused = smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise NotifyError(
                "email",
                "send",
                f"{where} refused the login for {self.username!r} ({exc.smtp_code})",
                retryable=False,
                status=exc.smtp_code,
                hint="check the SMTP username and the password secret",
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {addr: code for addr, (code, _) in exc.recipients.items()}
            detail = "; ".join(
                f"{addr}: {code} {_text(resp)}" for addr, (code, resp) in exc.recipients.items()
            )
            raise NotifyError(
                "email",
                "send",
                f"{where} refused every recipient: {scrub(detail, secrets)}",
                retryable=all(_smtp_code_retryable(c) for c in codes.values()),
                hint="check notifications.channels.*.to",
            ) from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError, smtplib.SMTPHeloError) as exc:
            code = exc.smtp_code
            raise NotifyError(
                "email",
                "send",
                f"{where} refused the message: {code} {scrub(_text(exc.smtp_error), secrets)}",
                retryable=_smtp_code_retryable(code),
                status=code,
                hint="check the sender address and the server's relay rules",
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise NotifyError(
                "email",
                "send",
                f"{where} does not offer STARTTLS or AUTH",
                retryable=False,
                hint="set starttls: false or use a server that supports it",
            ) from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            reason = scrub(str(exc), secrets) or type(exc).__name__
            raise NotifyError(
                "email",
                "send",
                f"cannot deliver through {where}: {reason}",
                retryable=True,
                hint="check the SMTP server is up and reachable; deliveries are retried",
            ) from None
        if refused:
            # Some recipients took it; say which did not, but the message went out.
            bad = ", ".join(sorted(refused))
            raise NotifyError(
                "email",
                "send",
                f"{where} accepted the message but refused {bad}",
                retryable=False,
                hint="check notifications.channels.*.to",
            )
