"""docs/configuration.md documents every section and key of deployops.yaml from one annotated
example: the example loads, validates for each of its environments without a warning, and sets
every key the file format has (a key added to the models without a line in the docs fails)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from deployops.config.project import ProjectConfig, load_project

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "configuration.md"
DEPLOYOPS = Path(sys.executable).parent / "deployops"
NOT_IN_THE_FILE = {"path"}


def _example() -> str:
    text = DOC.read_text(encoding="utf-8")
    marker = text.index("<!-- the annotated example:")
    m = re.compile(r"```yaml\n(.*?)```", re.S).search(text, marker)
    assert m is not None
    return m.group(1)


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models a field holds: itself, or the values of a dict / items of a tuple."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict:
        return _models(args[1])
    if origin in (tuple, list) or origin in (typing.Union, types.UnionType):
        return [m for a in args for m in _models(a)]
    return []


def _gather(model: type[BaseModel], value: Any, seen: dict[type[BaseModel], set[str]]) -> None:
    """Every key the example sets, per model (a model used in several places, like a
    service's ``rollback:`` and the top-level one, counts the keys of all of them)."""
    if not isinstance(value, dict):
        return
    keys = seen.setdefault(model, set())
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in value:
            continue
        keys.add(key)
        inner = value[key]
        items: list[Any]
        if typing.get_origin(field.annotation) is dict and isinstance(inner, dict):
            items = list(inner.values())
        elif isinstance(inner, list):
            items = inner
        else:
            items = [inner]
        for sub in _models(field.annotation):
            for item in items:
                _gather(sub, item, seen)


def _reachable(model: type[BaseModel], found: set[type[BaseModel]]) -> set[type[BaseModel]]:
    if model in found:
        return found
    found.add(model)
    for field in model.model_fields.values():
        for sub in _models(field.annotation):
            _reachable(sub, found)
    return found


def test_the_example_sets_every_key_of_the_file_format() -> None:
    data = yaml.safe_load(_example())
    seen: dict[type[BaseModel], set[str]] = {}
    _gather(ProjectConfig, data, seen)
    missing = sorted(
        f"{model.__name__}.{field.alias or name}"
        for model in _reachable(ProjectConfig, set())
        for name, field in model.model_fields.items()
        if name not in NOT_IN_THE_FILE and (field.alias or name) not in seen.get(model, set())
    )
    assert missing == []


def test_the_example_loads_as_written(tmp_path: Path) -> None:
    path = tmp_path / "deployops.yaml"
    path.write_text(_example(), encoding="utf-8")
    project = load_project(path)
    assert project.project == "shop-api"
    assert project.environment("production").platform == "aws"
    assert project.services["web"].rollback is not None


@pytest.mark.parametrize("environment", ["development", "staging", "production"])
def test_the_example_validates_without_a_warning(tmp_path: Path, environment: str) -> None:
    (tmp_path / "deployops.yaml").write_text(_example(), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.run(
        [str(DEPLOYOPS), "config", "validate", "-e", environment, "--offline"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr, proc.stderr
