"""Posting JSON to a webhook and mapping the answer to ``DriverError`` (shared by Slack and
PagerDuty). Nothing here ever puts a URL or a body that may carry a credential into a message."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx

from deployops.errors import DriverError
from deployops.secret import REDACTED, Secret

__all__ = ["NotifyError", "post_json", "scrub"]

# httpx logs every request URL at INFO ("HTTP Request: POST https://hooks.slack.com/...").
# A Slack webhook URL is a credential, so the filter below redacts the URLs of the secrets it
# has been told about before any handler sees the record.
_REGISTERED: set[str] = set()


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _REGISTERED and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(
                REDACTED if any(s in str(a) for s in _REGISTERED) else a for a in args
            )
        return True


_FILTER = _RedactFilter()


def _register(secret: Secret) -> None:
    value = secret.reveal()
    if value and value not in _REGISTERED:
        _REGISTERED.add(value)
    for name in ("httpx", "httpcore"):
        log = logging.getLogger(name)
        if _FILTER not in log.filters:
            log.addFilter(_FILTER)


class NotifyError(DriverError):
    """A channel refused or could not be reached. ``retry_after`` is the receiver's own
    ``Retry-After`` in seconds, when it gave one (Slack and PagerDuty do on 429)."""

    def __init__(
        self,
        driver: str,
        operation: str,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(driver, operation, message, retryable=retryable, hint=hint)
        self.retry_after = retry_after
        self.status = status


def _variants(value: str) -> list[str]:
    """The value, and for a URL its path and query too: the secret part of a Slack webhook is
    its path, which a receiver may echo without the host."""
    out = [value]
    try:
        parts = urlsplit(value)
    except ValueError:
        return out
    if parts.scheme and parts.netloc:
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        if len(tail) >= 8:
            out.append(tail)
    return out


def scrub(text: str, secrets: Iterable[Secret | None]) -> str:
    """``text`` with every secret value (and a secret URL's path) replaced by ``[REDACTED]``."""
    for s in secrets:
        if s is not None and s.reveal():
            for variant in _variants(s.reveal()):
                text = text.replace(variant, REDACTED)
    return text


def _retry_after(resp: httpx.Response) -> float | None:
    raw = resp.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def post_json(
    http: httpx.Client,
    *,
    driver: str,
    url: Secret,
    body: dict[str, Any],
    timeout: float,
    secrets: Iterable[Secret | None] = (),
    url_is_secret: bool = True,
    hint_4xx: str,
) -> httpx.Response:
    """POST ``body`` as JSON to ``url``; return the 2xx response or raise :class:`NotifyError`:
    retryable for connection failures, timeouts, 429 and 5xx; not for other 4xx. ``url`` is
    redacted from messages and httpx's request log unless ``url_is_secret`` is false."""
    hidden = [url, *secrets] if url_is_secret else list(secrets)
    if url_is_secret:
        _register(url)
    try:
        resp = http.post(url.reveal(), json=body, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise NotifyError(
            driver, "post", f"timed out after {timeout:g}s ({type(exc).__name__})", retryable=True
        ) from None
    except httpx.TransportError as exc:
        reason = scrub(str(exc), hidden) or type(exc).__name__
        raise NotifyError(
            driver,
            "post",
            f"cannot reach the receiver: {reason}",
            retryable=True,
            hint="check the network path to the receiver; deliveries are retried",
        ) from None
    if resp.is_success:
        return resp
    detail = scrub(resp.text.strip()[:200], hidden)
    status = resp.status_code
    if status == 429 or status >= 500:
        raise NotifyError(
            driver,
            "post",
            f"receiver answered {status}: {detail}",
            retryable=True,
            retry_after=_retry_after(resp),
            status=status,
        )
    raise NotifyError(
        driver,
        "post",
        f"receiver refused the message with {status}: {detail}",
        retryable=False,
        status=status,
        hint=hint_4xx,
    )
