"""CHK-1 code review: at least 2 approvals from an approvals file, from a real git commit's
trailers, or from a GitHub pull request read over HTTP — here a loopback HTTP server that
answers like GitHub's REST API (it cannot show GitHub's own permission rules or rate limits)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from deployops.config.checklist import ChecklistItemConfig, ChecklistSettings, GithubApprovals
from deployops.domain.checklist import Stage
from deployops.drivers.git import commit_author_and_message
from deployops.drivers.github import GithubPullReviews
from deployops.engine.checklist import ChecklistGate
from deployops.errors import DriverError
from deployops.secret import Secret

pytestmark = pytest.mark.integration

TOKEN = "ghp_test_token_never_printed"


@dataclass
class FakeGithub:
    port: int = 0
    pulls: dict[str, Any] = field(default_factory=dict)
    reviews: dict[str, list[Any]] = field(default_factory=dict)
    seen: list[tuple[str, str]] = field(default_factory=list)  # (path, Authorization)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def github() -> Iterator[FakeGithub]:
    gh = FakeGithub()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            gh.seen.append((self.path, self.headers.get("Authorization", "")))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"message": "Bad credentials"})
                return
            path, _, query = self.path.partition("?")
            parts = path.strip("/").split("/")  # repos/o/r/pulls/n[/reviews]
            key = "/".join(parts[1:5])
            if len(parts) == 5 and key in gh.pulls:
                self._send(200, gh.pulls[key])
            elif len(parts) == 6 and parts[5] == "reviews" and key in gh.reviews:
                page = 2 if "page=2" in query else 1
                items = gh.reviews[key]
                half = (len(items) + 1) // 2
                body = items[:half] if page == 1 else items[half:]
                link = {}
                if page == 1:
                    link = {"Link": f'<{gh.url}{path}?per_page=100&page=2>; rel="next"'}
                self._send(200, body, link)
            else:
                self._send(404, {"message": "Not Found"})

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    gh.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield gh
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _review(user: str, state: str, at: str) -> dict[str, Any]:
    return {"user": {"login": user}, "state": state, "submitted_at": at}


def _gate(root: Path, token: str = TOKEN, **cfg: Any) -> ChecklistGate:
    settings = ChecklistSettings(pre={"code-review": ChecklistItemConfig(**cfg)})

    def fetch(gh: Any) -> Any:
        with httpx.Client(trust_env=False) as http:
            client = GithubPullReviews(api_url=gh["api_url"], token=Secret(token), http=http)
            return client.fetch(gh["repo"], gh["pull"])

    return ChecklistGate(
        items=settings.items(Stage.PRE),
        root=root,
        fetch_pull=fetch,
        read_commit=lambda ref: commit_author_and_message(root, ref),
    )


def _judge(gate: ChecklistGate):  # type: ignore[no-untyped-def]
    return gate.judge(next(i for i in gate.items if i.name == "code-review"))


def test_github_pull_request_with_two_approvals_passes_over_paginated_reviews(
    github: FakeGithub, tmp_path: Path
) -> None:
    github.pulls["acme/shop/pulls/7"] = {"user": {"login": "alice"}, "head": {"sha": "abc"}}
    github.reviews["acme/shop/pulls/7"] = [
        _review("bob", "CHANGES_REQUESTED", "2026-12-01T09:00:00Z"),
        _review("alice", "APPROVED", "2026-12-01T09:10:00Z"),  # the author: never counts
        _review("carol", "APPROVED", "2026-12-01T09:20:00Z"),
        _review("bob", "COMMENTED", "2026-12-01T09:30:00Z"),  # a comment changes nothing
        _review("bob", "APPROVED", "2026-12-01T09:40:00Z"),
    ]
    gh = GithubApprovals(repo="acme/shop", pull=7, api_url=github.url)
    v = _judge(_gate(tmp_path, source="github", github=gh))
    assert v.passed, v.summary
    assert sorted(v.evidence["by"]) == ["bob", "carol"]
    assert v.evidence["author"] == "alice"
    assert v.source == "github acme/shop#7"
    assert any("page=2" in p for p, _ in github.seen)  # the second page was read
    assert all(auth == f"Bearer {TOKEN}" for _, auth in github.seen)


def test_github_outstanding_change_request_or_one_approval_fails(
    github: FakeGithub, tmp_path: Path
) -> None:
    github.pulls["acme/shop/pulls/8"] = {"user": {"login": "alice"}}
    github.reviews["acme/shop/pulls/8"] = [
        _review("carol", "APPROVED", "2026-12-01T09:20:00Z"),
        _review("dave", "APPROVED", "2026-12-01T09:21:00Z"),
        _review("bob", "CHANGES_REQUESTED", "2026-12-01T09:40:00Z"),
    ]
    gh = GithubApprovals(repo="acme/shop", pull=8, api_url=github.url)
    v = _judge(_gate(tmp_path, source="github", github=gh))
    assert not v.passed
    assert "changes requested by bob" in v.summary
    github.reviews["acme/shop/pulls/8"] = [_review("carol", "APPROVED", "2026-12-01T09:20:00Z")]
    v = _judge(_gate(tmp_path, source="github", github=gh))
    assert not v.passed
    assert v.summary == "1 of 2 approvals (carol)"


def test_github_bad_token_fails_the_item_without_showing_the_token(
    github: FakeGithub, tmp_path: Path
) -> None:
    github.pulls["acme/shop/pulls/9"] = {"user": {"login": "alice"}}
    gh = GithubApprovals(repo="acme/shop", pull=9, api_url=github.url)
    v = _judge(_gate(tmp_path, token="wrong-token-value", source="github", github=gh))
    assert not v.passed
    assert "401" in v.summary
    assert "token" in v.summary
    assert "wrong-token-value" not in json.dumps(v.to_json())
    v = _judge(
        _gate(
            tmp_path,
            source="github",
            github=GithubApprovals(repo="acme/other", pull=1, api_url=github.url),
        )
    )
    assert "404" in v.summary
    assert "checklist.pre.code-review.github.repo" in v.summary
    assert TOKEN not in json.dumps(v.to_json())


def test_driver_error_never_carries_the_token() -> None:
    with httpx.Client(trust_env=False) as http:
        client = GithubPullReviews(api_url="http://127.0.0.1:9", token=Secret(TOKEN), http=http)
        with pytest.raises(DriverError) as err:
            client.fetch("acme/shop", 1)
    assert TOKEN not in str(err.value)
    assert TOKEN not in repr(client)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, timeout=30)


def _repo(root: Path, message: str) -> None:
    _git(root, "init", "-q")
    _git(root, "config", "user.name", "Alice Author")
    _git(root, "config", "user.email", "alice@example.com")
    (root / "f.txt").write_text("x")
    _git(root, "add", "f.txt")
    _git(root, "commit", "-q", "-m", message)


def test_git_trailers_of_a_real_commit_count_as_approvals(tmp_path: Path) -> None:
    _repo(
        tmp_path,
        "Add orders\n\nApproved-by: Bob Reviewer <bob@example.com>\n"
        "Reviewed-by: Carol <carol@example.com>\n",
    )
    v = _judge(_gate(tmp_path, source="git"))
    assert v.passed, v.summary
    assert v.evidence["author"] == "Alice Author <alice@example.com>"
    assert v.evidence["approvals"] == 2
    assert v.source == "git HEAD"


def test_a_trailer_naming_the_author_is_refused(tmp_path: Path) -> None:
    _repo(
        tmp_path,
        "Add orders\n\nApproved-by: Bob <bob@example.com>\nApproved-by: alice@example.com\n",
    )
    v = _judge(_gate(tmp_path, source="git"))
    assert not v.passed
    assert "names the commit's author" in v.summary


def test_outside_a_repository_the_item_fails_naming_the_fix(tmp_path: Path) -> None:
    v = _judge(_gate(tmp_path, source="git"))
    assert not v.passed
    assert "checklist.pre.code-review.git_ref" in v.summary


def test_an_approvals_file_naming_the_author_is_refused(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    path = tmp_path / "reports" / "approvals.json"
    path.write_text(json.dumps({"author": "alice", "approvals": ["bob", "Alice"]}))
    v = _judge(_gate(tmp_path))
    assert not v.passed
    assert v.summary.startswith("reports/approvals.json: 'Alice' is the author")
    path.write_text(json.dumps({"author": "alice", "approvals": ["bob", {"by": "bob"}]}))
    v = _judge(_gate(tmp_path))
    assert not v.passed  # the same reviewer twice is one approval
    assert v.summary == "1 of 2 approvals (bob)"
    path.write_text(json.dumps({"approvals": ["bob", "carol"]}))
    assert "names no author" in _judge(_gate(tmp_path)).summary
