"""The HTTP prober both platforms use for smoke tests and traffic checks."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from deployops.domain.model import ProbeResult

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpProber"]


class HttpProber:
    """``Prober`` over httpx; one pooled client, no keep-alive surprises across switches."""

    def __init__(self, *, client: httpx.Client | None = None) -> None:
        self._client = client

    def _http(self) -> httpx.Client:
        import httpx  # on first use: a deploy that fails before its smoke tests never pays it

        if self._client is None:
            # A fresh connection per probe: each probe sees what a new client sees (the
            # listener's routing, its accept queue), not a connection warmed up earlier.
            self._client = httpx.Client(
                limits=httpx.Limits(max_keepalive_connections=0), trust_env=False
            )
        return self._client

    def get(self, url: str, *, timeout_s: float) -> ProbeResult:
        import httpx

        start = time.perf_counter()
        try:
            resp = self._http().get(url, timeout=timeout_s)
        except httpx.HTTPError as exc:
            return ProbeResult(
                url=url,
                status=0,
                elapsed_ms=(time.perf_counter() - start) * 1000,
                error=f"{type(exc).__name__}: {exc}",
            )
        return ProbeResult(
            url=url,
            status=resp.status_code,
            elapsed_ms=(time.perf_counter() - start) * 1000,
            body=resp.text[:2000],
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
