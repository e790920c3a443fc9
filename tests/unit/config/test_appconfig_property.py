"""Property: whatever text is in an environment file, schema or .env.local, the loader only
ever raises ConfigError, and every issue has a path (CFG-1, SEC-1)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployops.config.appconfig import ConfigPaths, load, parse_dotenv, parse_env_yaml
from deployops.errors import ConfigError

YAMLISH = st.text(
    alphabet=st.sampled_from(list("ABDEFGHNOPRST_:-[]{},'\"#&*!|>%@`\n\t 019.=\\x")),
    max_size=120,
)
KEYS = st.sampled_from(["APP_NAME", "DB_PORT", "PORT", "NODE_ENV", "AWS_REGION", "S3_BUCKET"])
VALUES = st.one_of(st.text(max_size=30), st.integers(), st.booleans(), st.none())
STRUCTURED = st.dictionaries(KEYS, VALUES, max_size=6).map(
    lambda d: "\n".join(f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}" for k, v in d.items())
)
ANY_TEXT = st.one_of(YAMLISH, STRUCTURED, st.text(max_size=80))


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="appcfg-"))
    (path / "environments").mkdir()
    yield path
    shutil.rmtree(path)


def _check(paths: ConfigPaths, env: str) -> None:
    try:
        _, issues = load(paths, env, environ={}, resolve_secrets=True)
    except ConfigError as exc:
        issues = list(exc.issues)
        assert issues
    assert all(i.path for i in issues)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(env_text=ANY_TEXT, dotenv_text=st.one_of(YAMLISH, st.text(max_size=80)))
def test_cfg1_sec1_loader_only_raises_config_error_with_a_path(
    folder: Path, env_text: str, dotenv_text: str
) -> None:
    (folder / "environments" / "development.yaml").write_text(env_text, encoding="utf-8")
    (folder / ".env.local").write_text(dotenv_text, encoding="utf-8")
    _check(ConfigPaths(dir=folder), "development")


@settings(max_examples=100, deadline=None)
@given(schema_text=ANY_TEXT, raw=st.binary(max_size=40))
def test_cfg1_random_schema_and_bytes_only_yield_issues_with_paths(
    folder: Path, schema_text: str, raw: bytes
) -> None:
    (folder / "schema.yaml").write_text(schema_text, encoding="utf-8")
    (folder / "environments" / "staging.yaml").write_bytes(raw)
    try:
        _check(ConfigPaths(dir=folder), "staging")
    finally:
        (folder / "schema.yaml").unlink()


@given(text=ANY_TEXT)
def test_cfg1_parsers_return_issues_never_raise(text: str) -> None:
    for parser in (parse_env_yaml, parse_dotenv):
        _, issues = parser(text, "f")
        assert all(i.path and i.file for i in issues)
