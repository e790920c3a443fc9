"""Real CI artefacts made from a small fixture project: a real pytest run's JUnit XML, a real
coverage.py XML report, real ruff JSON and SARIF, real pip-audit and checkov JSON.

``FixtureProject`` writes the project ``calc`` (a module and its tests) into a folder; each
``make_*`` function runs the real tool there and returns the report's path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"

CORE = """
def add(a, b):
    return a + b


def div(a, b):
    if b == 0:
        raise ZeroDivisionError("b is 0")
    return a / b
"""

UNIT_TESTS = """
import pytest

from calc.core import add, div


def test_add():
    assert add(2, 3) == 5


def test_div():
    assert div(6, 3) == 2


def test_div_by_zero():
    with pytest.raises(ZeroDivisionError):
        div(1, 0)
"""

BROKEN_TEST = """
from calc.core import add


def test_add_is_wrong():
    assert add(2, 2) == 5
"""

E2E_TESTS = """
from calc.core import add, div


def test_flow():
    assert div(add(4, 4), 2) == 4
"""

# Never imported by the tests: with source=calc coverage counts it as 0 % covered.
UNTESTED = "\n".join(
    f"def f{i}(x):\n    if x > {i}:\n        return x - {i}\n    return x + {i}\n"
    for i in range(20)
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_CORE"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=180, check=False
    )


def write_project(
    folder: Path, *, broken: bool = False, untested: bool = False, lint_error: bool = False
) -> Path:
    """The fixture project ``calc``; ``broken`` adds a failing test, ``untested`` a module no
    test imports, ``lint_error`` an unused import."""
    (folder / "calc").mkdir(parents=True, exist_ok=True)
    (folder / "tests").mkdir(exist_ok=True)
    (folder / "e2e").mkdir(exist_ok=True)
    (folder / "reports").mkdir(exist_ok=True)
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [project]
            name = "calc"
            version = "1.0.0"

            [tool.pytest.ini_options]
            addopts = "-p no:cacheprovider"

            [tool.coverage.run]
            branch = true
            source = ["calc"]
            """
        )
    )
    (folder / "calc" / "__init__.py").write_text("")
    core = CORE if not lint_error else "import os\n" + CORE
    (folder / "calc" / "core.py").write_text(core)
    (folder / "tests" / "test_core.py").write_text(UNIT_TESTS)
    (folder / "e2e" / "test_flow.py").write_text(E2E_TESTS)
    if broken:
        (folder / "tests" / "test_broken.py").write_text(BROKEN_TEST)
    if untested:
        (folder / "calc" / "extra.py").write_text(UNTESTED)
    return folder


def make_junit_and_coverage(folder: Path) -> tuple[Path, Path]:
    """A real ``coverage run -m pytest --junitxml`` of the unit tests, then ``coverage xml``."""
    junit = folder / "reports" / "junit.xml"
    cov = folder / "reports" / "coverage.xml"
    run = _run(
        [
            sys.executable,
            "-m",
            "coverage",
            "run",
            "-m",
            "pytest",
            "-q",
            f"--junitxml={junit}",
            "tests",
        ],
        folder,
    )
    assert junit.is_file(), run.stdout + run.stderr
    xml = _run([sys.executable, "-m", "coverage", "xml", "-o", str(cov)], folder)
    assert xml.returncode == 0, xml.stdout + xml.stderr
    return junit, cov


def make_e2e_junit(folder: Path) -> Path:
    """The E2E suite in its own report, its suite named ``e2e``."""
    junit = folder / "reports" / "e2e-junit.xml"
    run = _run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            f"--junitxml={junit}",
            "-o",
            "junit_suite_name=e2e",
            "e2e",
        ],
        folder,
    )
    assert junit.is_file(), run.stdout + run.stderr
    return junit


def make_ruff(folder: Path, fmt: str = "json") -> Path:
    out = folder / "reports" / ("lint.json" if fmt == "json" else "lint.sarif")
    run = _run(
        [
            str(BIN / "ruff"),
            "check",
            "--isolated",
            "--no-cache",
            "--select",
            "F",
            "--output-format",
            fmt,
            "calc",
        ],
        folder,
    )
    assert run.returncode in (0, 1), run.stderr
    out.write_text(run.stdout)
    return out


def make_pip_audit(
    folder: Path, requirements: str
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A real ``pip-audit -f json`` of a requirements file (no install, no dependencies)."""
    req = folder / "requirements.txt"
    req.write_text(requirements)
    out = folder / "reports" / "security" / "pip-audit.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    run = _run(
        [
            str(BIN / "pip-audit"),
            "-r",
            str(req),
            "--no-deps",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "-f",
            "json",
            "-o",
            str(out),
        ],
        folder,
    )
    return out, run


def make_checkov(folder: Path, *, public: bool) -> Path:
    """A real checkov scan of one S3 bucket for CKV_AWS_20 (no public-read ACL)."""
    tf = folder / "infra"
    tf.mkdir(exist_ok=True)
    acl = "public-read" if public else "private"
    (tf / "main.tf").write_text(
        textwrap.dedent(
            f"""
            resource "aws_s3_bucket" "assets" {{
              bucket = "calc-assets"
              acl    = "{acl}"
            }}
            """
        )
    )
    out = folder / "reports" / "security" / "checkov.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in _env().items() if not k.startswith(("BC_", "PRISMA_"))}
    env["CHECKOV_RUN_SCA_PACKAGE_SCAN_V2"] = "false"
    run = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(tf),
            "--framework",
            "terraform",
            "--check",
            "CKV_AWS_20",
            "-o",
            "json",
            "--skip-download",
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode in (0, 1), run.stderr[-2000:]
    out.write_text(run.stdout)
    return out
