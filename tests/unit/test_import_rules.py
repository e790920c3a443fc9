"""The layering of DESIGN.md, enforced by an AST scan of every module under src/deployops:

- ``domain`` imports only the standard library (and ``deployops.domain``), plus numpy and scipy
  for the statistical judge (pure computation, no I/O): pure, testable with ==;
- only ``drivers/aws`` imports boto3/botocore (boto3 is an optional extra);
- only ``cli`` imports typer; only ``web`` imports fastapi/uvicorn/starlette;
- ``engine`` talks to the world only through ``ports``: no driver package, no vendor client.

Imports inside functions and under ``TYPE_CHECKING`` count too: a lazy import is still a
dependency. The second half of the file proves the scanner catches each kind of violation.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "deployops"
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}
#: Pure numerical libraries the domain may use (the judge's tests are scipy's, not hand-written).
DOMAIN_NUMERIC = frozenset({"numpy", "scipy"})

ENGINE_MAY_USE = (
    "deployops.engine",
    "deployops.store",
    "deployops.ports",
    "deployops.domain",
    "deployops.config",
    "deployops.errors",
    "deployops.clock",
    "deployops.ids",
    "deployops.secret",
    "deployops.notify",
)
ENGINE_VENDOR_BAN = ("boto3", "botocore", "httpx", "sqlalchemy", "psycopg", "alembic", "psutil")


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    rule: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}: {self.rule}"


def _within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def check_import(module: str, imported: str) -> str | None:
    """The rule ``module`` breaks by importing ``imported``, or None. The rule table."""
    top = imported.split(".")[0]
    if (
        _within(module, "deployops.domain")
        and top not in STDLIB
        and top not in DOMAIN_NUMERIC
        and not _within(imported, "deployops.domain")
    ):
        return "domain imports only the standard library, numpy/scipy and deployops.domain"
    if top in ("boto3", "botocore") and not _within(module, "deployops.drivers.aws"):
        return "only deployops.drivers.aws imports boto3/botocore"
    if top == "typer" and not _within(module, "deployops.cli"):
        return "only deployops.cli imports typer"
    if top in ("fastapi", "uvicorn", "starlette") and not _within(module, "deployops.web"):
        return "only deployops.web imports fastapi/uvicorn"
    if _within(module, "deployops.engine"):
        if top == "deployops" and not _within(imported, *ENGINE_MAY_USE):
            return "engine reaches the world only through ports (no drivers, cli or web)"
        if top in ENGINE_VENDOR_BAN:
            return f"engine does not use {top} directly; go through a port or the store"
    return None


def imports_of(source: str, module: str, *, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """Every module ``source`` imports, absolute, with its line (relative ones resolved)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                base = parts if is_package else parts[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                name = f"{prefix}.{node.module}" if node.module else prefix
            else:
                name = node.module or ""
            if name == "deployops":
                # ``from deployops import drivers`` imports the submodule deployops.drivers
                for alias in node.names:
                    yield node.lineno, f"deployops.{alias.name}"
            else:
                yield node.lineno, name


def scan_source(source: str, module: str, *, is_package: bool = False) -> list[Violation]:
    out = []
    for line, imported in imports_of(source, module, is_package=is_package):
        rule = check_import(module, imported)
        if rule:
            out.append(Violation(module, line, imported, rule))
    return out


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def test_the_source_tree_follows_the_layering() -> None:
    scanned = 0
    violations: list[Violation] = []
    for module, path in _modules():
        if "migrations" in path.parts:
            continue
        scanned += 1
        violations += scan_source(
            path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py"
        )
    assert scanned > 20  # the scan really walked the package
    assert violations == [], "\n".join(map(str, violations))


# ---------------------------------------------------------------- the scanner catches violations
@pytest.mark.parametrize(
    ("module", "source", "rule"),
    [
        ("deployops.domain.rules", "import boto3\n", "domain imports only the standard library"),
        ("deployops.domain.rules", "from pydantic import BaseModel\n", "domain imports only"),
        ("deployops.domain.rules", "import pandas\n", "domain imports only"),
        (
            "deployops.domain.rules",
            "def f():\n    from deployops.store import StateStore\n",
            "domain imports only",
        ),
        (
            "deployops.domain.rules",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import httpx\n",
            "domain imports only",
        ),
        ("deployops.drivers.local.haproxy", "import botocore.stub\n", "only deployops.drivers.aws"),
        ("deployops.engine.deploy", "import typer\n", "only deployops.cli imports typer"),
        ("deployops.store.store", "from fastapi import FastAPI\n", "only deployops.web"),
        ("deployops.engine.deploy", "from deployops.drivers.local import x\n", "engine reaches"),
        ("deployops.engine.deploy", "from ..drivers.aws import ecs\n", "engine reaches"),
        ("deployops.engine.deploy", "from deployops import cli\n", "engine reaches"),
        ("deployops.engine.deploy", "import httpx\n", "engine does not use httpx"),
        ("deployops.engine.deploy", "from sqlalchemy import select\n", "engine does not use"),
    ],
)
def test_scanner_catches_a_forbidden_import(module: str, source: str, rule: str) -> None:
    found = scan_source(source, module)
    assert len(found) == 1, found
    assert found[0].rule.startswith(rule)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("deployops.domain.rules", "import math\nfrom deployops.domain.model import Plan\n"),
        ("deployops.domain.plan", "from .model import Step\n"),
        (
            "deployops.drivers.aws.ecs",
            "import boto3\nfrom botocore.exceptions import ClientError\n",
        ),
        ("deployops.cli.main", "import typer\n"),
        ("deployops.web.app", "from fastapi import FastAPI\nimport uvicorn\n"),
        (
            "deployops.engine.deploy",
            "from deployops.ports import Compute\nfrom deployops.store import StateStore\n"
            "from deployops.clock import Clock\nfrom deployops.notify import router\n",
        ),
    ],
)
def test_scanner_allows_what_the_design_allows(module: str, source: str) -> None:
    assert scan_source(source, module) == []


def test_planting_a_forbidden_import_in_a_real_module_fails_the_check() -> None:
    """What the CI sees if someone adds ``import boto3`` to the pure core."""
    real = (PACKAGE / "domain" / "version.py").read_text(encoding="utf-8")
    assert scan_source(real, "deployops.domain.version") == []
    planted = real + "\nimport boto3  # oops\n"
    (violation,) = scan_source(planted, "deployops.domain.version")
    assert violation.imported == "boto3"
    assert "deployops.domain.version:" in str(violation)
