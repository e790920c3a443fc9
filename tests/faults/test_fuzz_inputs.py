"""Fuzzed input: whatever a person writes in ``deployops.yaml`` or types on the command line,
deployops answers with a message naming what is wrong and a documented exit code — never a
traceback, never an "internal error", and nothing changed.

Each input kind gets ``FUZZ_EXAMPLES`` examples (500 under ``make faults``)."""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployops.cli.main import main
from deployops.config.project import load_project
from deployops.errors import ConfigError
from faults.conftest import FUZZ_EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = yaml.safe_load(
    (ROOT / "src/deployops/config/templates/deployops.yaml").read_text(encoding="utf-8")
)
DEMO = yaml.safe_load((ROOT / "examples/demo/deployops.yaml").read_text(encoding="utf-8"))
DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 4}
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Values people (and typos) put where a number, a duration, a name or a section belongs.
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "",
            " ",
            "5m",
            "-5m",
            "10q",
            "1e400",
            "nan",
            "inf",
            "0s",
            "99999999d",
            "1h30",
            "∞",
            "/",
            "a" * 300,
            "secret://",
            "{version}",
            "ïñtërnätiönàl",
            "\t\n",
        ]
    ),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=2),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


@st.composite
def mutated_project(draw: st.DrawFn) -> str:
    """A real project file (the template ``init`` writes, or the demo's) with one to three
    values replaced, keys removed or unknown keys added anywhere in the tree."""
    doc = copy.deepcopy(draw(st.sampled_from([TEMPLATE, DEMO])))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(ODD_VALUES)
        else:
            parent[path[-1]] = draw(ODD_VALUES)
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _assert_config_errors_only(file: Path) -> None:
    try:
        load_project(file)
    except ConfigError as exc:
        issues = list(exc.issues)
    else:
        return
    assert issues, "a ConfigError names at least one problem"
    for issue in issues:
        assert issue.path, f"every problem names where it is: {issue.render()}"
        assert issue.message.strip()


@FUZZ
@given(text=mutated_project())
def test_mutated_project_files_only_raise_config_errors_with_paths(
    tmp_path: Path, text: str
) -> None:
    file = tmp_path / "deployops.yaml"
    file.write_text(text, encoding="utf-8")
    _assert_config_errors_only(file)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_arbitrary_bytes_as_the_project_file_are_refused_with_a_path(
    tmp_path: Path, raw: bytes
) -> None:
    file = tmp_path / "deployops.yaml"
    file.write_bytes(raw)
    try:
        _assert_config_errors_only(file)
    except UnicodeDecodeError:  # pragma: no cover - the failure this test exists to catch
        pytest.fail("a file that is not UTF-8 must be a configuration error, not a crash")


# ---------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder as ``deployops init`` writes it (no platform running)."""
    folder = tmp_path_factory.mktemp("fuzz") / "shop-api"
    folder.mkdir()
    code, _, err = _run(folder, "init")
    assert code == 0, err
    return folder


def _run(cwd: Path, *args: str) -> tuple[int, str, str]:
    """``main()`` in this process with argv and cwd; exit code, stdout, stderr."""
    import contextlib
    import io
    import os

    out, err = io.StringIO(), io.StringIO()
    old_argv, old_cwd = sys.argv, Path.cwd()
    sys.argv = ["deployops", *args]
    os.chdir(cwd)
    code: int | str | None = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
    return (
        (code if isinstance(code, int) else (0 if code is None else 2)),
        out.getvalue(),
        err.getvalue(),
    )


def _assert_answered(code: int, out: str, err: str, args: tuple[str, ...]) -> None:
    text = out + err
    assert "Traceback" not in text, args
    assert "internal error" not in text, (args, text)
    assert code in DOCUMENTED_EXIT_CODES, (args, code, text)
    if code != 0:
        assert text.strip(), f"a refusal says why: {args}"


ARG_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "1.2.3",
            "v1.2.3",
            "01.2.3",
            "1.2",
            "1.2.3-",
            "1.2.3+",
            "-1.0.0",
            "1.2.3 ",
            "",
            "dep-20261129-084501-7f30",
            "dep-",
            "dep-../../etc",
            "../deployops.yaml",
            "/dev/null",
            "-",
            "--",
            "-o",
            "json",
            "5m",
            "-5m",
            "nan",
            "∞",
            "staging",
            "production",
            "web",
            "a" * 500,
            "\x00",
            "${HOME}",
            "`id`",
        ]
    ),
)


@FUZZ
@given(version=ARG_TEXT, env=st.sampled_from(["staging", "production", "development", "nope"]))
def test_any_version_for_a_dry_run_deploy_gets_an_answer(
    project: Path, version: str, env: str
) -> None:
    if "\x00" in version:
        version = version.replace("\x00", "")
    args = ("deploy", "-e", env, "--version", version, "--dry-run")
    _assert_answered(*_run(project, *args), args)


COMMANDS = [
    ("deployments", "show", "{}"),
    ("rollback", "{}", "--dry-run"),
    ("resume", "{}"),
    ("lock", "release", "{}", "--force", "--reason", "fuzz"),
    ("-c", "{}", "config", "validate"),
    ("-e", "{}", "config", "show"),
    ("config", "diff", "{}", "staging"),
    ("deployments", "list", "--limit", "{}"),
    ("health", "-e", "{}"),
]


@FUZZ
@given(template=st.sampled_from(COMMANDS), value=ARG_TEXT, json_out=st.booleans())
def test_any_id_path_or_name_on_the_command_line_gets_an_answer(
    project: Path, template: tuple[str, ...], value: str, json_out: bool
) -> None:
    value = value.replace("\x00", "")
    args = tuple(value if part == "{}" else part for part in template)
    if json_out:
        args = ("-o", "json", *args)
    _assert_answered(*_run(project, *args), args)
