"""Approvals from a GitHub pull request over its REST API (CHK-1 code review).

    reviews = GithubPullReviews(api_url="https://api.github.com", token=Secret(t), http=client)
    pull, found = reviews.fetch("acme/shop-api", 42)

The token is a :class:`~deployops.secret.Secret`: it goes only into the Authorization header,
never into a message. The response is handed to ``domain.artefacts.approvals_from_github``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from deployops.errors import DriverError
from deployops.secret import Secret

__all__ = ["GithubPullReviews"]

_MAX_PAGES = 10  # 1,000 reviews: more than any pull request gets


class GithubPullReviews:
    name: ClassVar[str] = "github"

    def __init__(
        self,
        *,
        api_url: str,
        token: Secret | None,
        http: httpx.Client,
        timeout: float = 10.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._http = http
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"GithubPullReviews(api_url={self.api_url!r}, token=[REDACTED])"

    def _get(self, url: str, what: str) -> httpx.Response:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "deployops",
        }
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.reveal()}"
        try:
            resp = self._http.get(url, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise DriverError(
                "github",
                what,
                f"{type(exc).__name__} reaching {self.api_url}",
                retryable=True,
                hint="check the network, or checklist.pre.code-review.github.api_url",
            ) from exc
        if resp.status_code in (401, 403):
            raise DriverError(
                "github",
                what,
                f"{self.api_url} answered {resp.status_code}",
                hint="the token (checklist.pre.code-review.github.token) is missing, expired "
                "or lacks read access to pull requests",
            )
        if resp.status_code == 404:
            raise DriverError(
                "github",
                what,
                f"{self.api_url} answered 404",
                hint="check checklist.pre.code-review.github.repo and pull (and that the "
                "token can see a private repository)",
            )
        if resp.status_code >= 400:
            raise DriverError(
                "github",
                what,
                f"{self.api_url} answered {resp.status_code}",
                retryable=resp.status_code >= 500,
            )
        return resp

    def _json(self, resp: httpx.Response, what: str) -> Any:
        try:
            return resp.json()
        except ValueError as exc:
            raise DriverError("github", what, "the answer is not JSON") from exc

    def fetch(self, repo: str, pull: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The pull request and every review on it (following pagination)."""
        base = f"{self.api_url}/repos/{repo}/pulls/{pull}"
        pr = self._json(self._get(base, "read pull request"), "read pull request")
        if not isinstance(pr, dict):
            raise DriverError("github", "read pull request", "unexpected answer")
        reviews: list[dict[str, Any]] = []
        url: str | None = f"{base}/reviews?per_page=100"
        for _ in range(_MAX_PAGES):
            if url is None:
                break
            resp = self._get(url, "read reviews")
            page = self._json(resp, "read reviews")
            if not isinstance(page, list):
                raise DriverError("github", "read reviews", "unexpected answer")
            reviews.extend(r for r in page if isinstance(r, dict))
            url = resp.links.get("next", {}).get("url")
        return pr, reviews
