"""Schemathesis against the published OpenAPI (``/api/openapi.json``): generated requests,
valid and invalid, to every operation with an admin token; none may get a server error or a
response that breaks its own schema. The live event stream (``/api/events``) is left out: it
is a long-lived stream by design (its bound is tested in test_api.py)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.unit.web.conftest import TOKENS, Web

pytestmark = pytest.mark.slow


def operations(web: Web) -> list[Any]:
    url = str(web.client.base_url).rstrip("/") + "/api/openapi.json"
    schema = schemathesis.openapi.from_url(url).exclude(path_regex=r"^/api/events$")
    return [result.ok() for result in schema.get_all_operations()]


def test_no_server_error_for_any_generated_request(web: Web) -> None:
    base_url = str(web.client.base_url).rstrip("/")
    headers = {"Authorization": f"Bearer {TOKENS['admin']}"}
    ops = operations(web)
    assert len(ops) >= 15, [op.label for op in ops]
    seen: list[tuple[str, int]] = []
    for op, mode in itertools.product(ops, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(
            max_examples=10,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            seen.append((case.operation.label, response.status_code))
            assert "Traceback" not in response.text
            case.validate_response(response, checks=[not_a_server_error])
            web.wait_idle()

        try:
            check()
        except Unsatisfiable:
            # an operation without parameters or body has no invalid request to make
            assert mode is GenerationMode.NEGATIVE, op.label
    assert all(status < 500 for _, status in seen)
    statuses = {status for _, status in seen}
    assert {200, 404, 422} <= statuses, statuses  # both valid and invalid requests ran
    assert {label for label, _ in seen} == {op.label for op in ops}
