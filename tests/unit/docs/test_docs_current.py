"""The docs match the code: the CLI reference is generated from the CLI, the README names the
two commands, and every runbook names commands that exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_cli_reference_is_current() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_cli_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_readme_gives_the_two_commands_and_links_existing_docs() -> None:
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text
    assert "make test" in text
    for link in re.findall(r"\]\(((?:docs|infrastructure)[^)#]*)\)", text):
        assert (ROOT / link).exists(), link


def test_runbooks_only_name_commands_that_exist() -> None:
    reference = (ROOT / "docs" / "cli.md").read_text()
    known = set(re.findall(r"^#+ `deployops ([a-z -]+)`", reference, flags=re.M))
    tops = {k.split()[0] for k in known}
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    for page in pages:
        text = page.read_text()
        fences = re.findall(r"```([a-z]*)\n(.*?)```", text, flags=re.S)
        code = "\n".join(body for lang, body in fences if lang in ("", "sh", "bash"))
        code += "\n" + "\n".join(re.findall(r"`(deployops [^`]+)`", text))
        code = "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in code.splitlines())
        for cmd in re.findall(r"(?:^|\s|/)deployops (?:-[a-z] \S+ |--?[a-z-]+ )*([a-z]+)", code):
            assert cmd in tops, f"{page.name}: deployops {cmd}"


def test_every_recovery_level_and_drill_has_a_runbook_dr7() -> None:
    from deployops.cli.dr_cmd import RUNBOOKS
    from deployops.domain.backup import DrillScenario

    runbooks = ROOT / "docs" / "runbooks"
    for name in ("level1-partial-failure.md", "level2-database.md", "level3-region.md"):
        assert (runbooks / name).is_file(), name
    for scenario in DrillScenario:
        assert (ROOT / RUNBOOKS[scenario.value]).is_file(), scenario
