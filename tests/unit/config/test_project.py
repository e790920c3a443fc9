"""The project file ``deployops.yaml``: the annotated template and every example validate; each
mistake is reported as ``file:path: message`` with the fix, all of them in one run, exit 2, no
traceback and nothing written to the state store. The guide's numbers are the defaults
(DEP-1 /health, DEP-2 desired_count 4 and 60 s, DEP-3 5 min, DEP-4 24 h, IAC-4 200/100)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deployops.config.project import (
    PROJECT_FILE,
    ProjectConfig,
    find_project_file,
    load_project,
)
from deployops.errors import ConfigError, NotFoundError

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = REPO / "src" / "deployops" / "config" / "templates" / "deployops.yaml"
DEPLOYOPS = Path(sys.executable).parent / "deployops"

MINIMAL = """\
project: shop-api
environments:
  staging: {platform: local}
  production: {platform: local}
services:
  web:
    port: 18080
    command: [python3, app.py]
"""


def _write(folder: Path, text: str) -> Path:
    path = folder / PROJECT_FILE
    path.write_text(text, encoding="utf-8")
    return path


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEPLOYOPS), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_template_validates_with_the_guides_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, TEMPLATE.read_text(encoding="utf-8"))
    cfg = load_project(path)
    web = cfg.service("web")
    assert set(cfg.environments) == {"development", "staging", "production"}
    assert web.health_check.path == "/health"  # DEP-1
    assert web.desired_count == 4  # DEP-2
    assert web.blue_green.health_timeout == 60.0  # DEP-2
    assert web.blue_green.stability_window == 300.0  # DEP-3
    assert web.blue_green.target_group_retention == 86400.0  # DEP-4
    assert (web.rolling.maximum_percent, web.rolling.minimum_healthy_percent) == (200, 100)
    assert cfg.environment("production").aws.region == "ap-northeast-1"  # CFG-5


def test_every_example_project_file_validates() -> None:
    """Annotated examples are both docs and fixtures: each one must load as shipped."""
    files = [TEMPLATE, *sorted((REPO / "examples").glob("**/deployops.yaml"))]
    loaded = {str(f.relative_to(REPO)): load_project(f).project for f in files}
    assert all(loaded.values())
    assert len(loaded) == len(files)


def test_defaults_fill_a_minimal_file(tmp_path: Path) -> None:
    cfg = load_project(_write(tmp_path, MINIMAL))
    web = cfg.service("web")
    assert web.listener_test_port == 18081
    assert web.strategy == "blue-green"
    assert cfg.state_url() == f"sqlite:///{tmp_path / '.deployops' / 'state.db'}"
    assert cfg.default_service() == "web"


def test_durations_accept_units(tmp_path: Path) -> None:
    text = MINIMAL + "    blue_green: {stability_window: 1h30m, health_timeout: 90s}\n"
    bg = load_project(_write(tmp_path, text)).service("web").blue_green
    assert (bg.stability_window, bg.health_timeout) == (5400.0, 90.0)


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    text = MINIMAL + "    heath_check: {path: /health}\n"
    with pytest.raises(ConfigError) as caught:
        load_project(_write(tmp_path, text))
    (issue,) = caught.value.issues
    assert issue.path == "services.web.heath_check"
    assert issue.file == str(tmp_path / PROJECT_FILE)
    assert "did you mean 'health_check'?" in issue.message


def test_wrong_types_name_the_field(tmp_path: Path) -> None:
    text = MINIMAL.replace("port: 18080", "port: eighty") + "    desired_count: many\n"
    with pytest.raises(ConfigError) as caught:
        load_project(_write(tmp_path, text))
    paths = {i.path for i in caught.value.issues}
    assert paths == {"services.web.port", "services.web.desired_count"}
    assert all("integer" in i.message for i in caught.value.issues)


def test_every_problem_is_reported_in_one_pass(tmp_path: Path) -> None:
    text = """\
project: shop-api
environments:
  staging: {platfrom: local}
services:
  web:
    port: 70000
    command: [python3, app.py]
    health_check: {path: health}
    blue_green: {stability_window: soon}
"""
    with pytest.raises(ConfigError) as caught:
        load_project(_write(tmp_path, text))
    by_path = {i.path: i.message for i in caught.value.issues}
    assert set(by_path) == {
        "environments.staging.platfrom",
        "services.web.port",
        "services.web.health_check.path",
        "services.web.blue_green.stability_window",
    }
    assert "did you mean 'platform'" in by_path["environments.staging.platfrom"]
    assert "e.g. /health" in by_path["services.web.health_check.path"]
    assert "30s, 5m" in by_path["services.web.blue_green.stability_window"]


def test_cross_field_problems_are_collected_too(tmp_path: Path) -> None:
    text = """\
project: Shop_API
environments:
  staging: {platform: local}
services:
  web: {port: 18080, test_port: 18080}
  api: {port: 18080, command: [python3, api.py]}
"""
    with pytest.raises(ConfigError) as caught:
        load_project(_write(tmp_path, text))
    paths = [i.path for i in caught.value.issues]
    assert "project" in paths
    assert "services.web.test_port" in paths  # port clash with its own listener
    assert "services.web.command" in paths  # the local platform needs a command
    assert "services.api.port" in paths  # 18080 is taken by web


def test_broken_yaml_points_at_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_project(_write(tmp_path, MINIMAL + "  - [unclosed\n"))
    assert caught.value.issues[0].path.startswith("line ")
    assert "not valid YAML" in caught.value.issues[0].message


def test_unknown_environment_and_service_suggest_names(tmp_path: Path) -> None:
    cfg = load_project(_write(tmp_path, MINIMAL))
    with pytest.raises(NotFoundError, match=r"unknown environment 'prod' \(did you mean"):
        cfg.environment("prod")
    with pytest.raises(NotFoundError, match="defines: web"):
        cfg.service("wbe")


def test_found_by_walking_up_from_the_working_directory(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL)
    deep = tmp_path / "src" / "pkg"
    deep.mkdir(parents=True)
    assert find_project_file(deep) == path
    with pytest.raises(ConfigError, match="deployops init"):
        find_project_file(tmp_path.parent / "elsewhere-not-created")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_project(tmp_path / "nope.yaml")


def test_state_url_env_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_project(_write(tmp_path, MINIMAL + "state: {url: 'sqlite:///x.db'}\n"))
    assert cfg.state_url() == "sqlite:///x.db"
    monkeypatch.setenv("DEPLOYOPS_DATABASE_URL", "postgresql://u@127.0.0.1/d")
    assert cfg.state_url() == "postgresql://u@127.0.0.1/d"


def test_project_config_is_immutable(tmp_path: Path) -> None:
    cfg = load_project(_write(tmp_path, MINIMAL))
    assert isinstance(cfg, ProjectConfig)
    with pytest.raises(ValueError, match="frozen"):
        cfg.project = "other"


# ---------------------------------------------------------------- through the CLI
def test_cli_reports_all_problems_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    bad = MINIMAL.replace("port: 18080", "port: eighty") + "    heath_check: {}\n"
    _write(tmp_path, bad)
    proc = _cli(tmp_path, "deployments", "list")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == "error: 2 problems:"
    assert any("deployops.yaml:services.web.port: " in ln for ln in lines)
    assert any("did you mean 'health_check'" in ln for ln in lines)
    assert not (tmp_path / ".deployops").exists()


def test_cli_without_a_project_file_says_how_to_get_one(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "deployments", "list")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: deployops.yaml: no deployops.yaml in {tmp_path} or any parent folder",
        "  fix: run `deployops init` to write an annotated one, or pass -c PATH",
    ]
    assert list(tmp_path.iterdir()) == []


def test_cli_unknown_environment_or_service_exit_2(tmp_path: Path) -> None:
    _write(tmp_path, MINIMAL)
    env = _cli(tmp_path, "-e", "prod", "deployments", "list")
    assert env.returncode == 2
    assert "unknown environment 'prod' (did you mean 'production'?)" in env.stderr
    svc = _cli(tmp_path, "deployments", "list", "--service", "wbe")
    assert svc.returncode == 2
    assert "unknown service 'wbe'" in svc.stderr
    assert "Traceback" not in env.stderr + svc.stderr
    assert not (tmp_path / ".deployops").exists()


def test_cli_finds_the_file_from_a_subfolder_and_c_overrides(tmp_path: Path) -> None:
    _write(tmp_path, MINIMAL)
    sub = tmp_path / "deep" / "er"
    sub.mkdir(parents=True)
    found = _cli(sub, "-o", "json", "deployments", "list")
    assert (found.returncode, found.stdout) == (0, "[]\n")
    assert (tmp_path / ".deployops" / "state.db").is_file()
    other = tmp_path / "other"
    other.mkdir()
    broken = _write(other, "project: [\n")
    overridden = _cli(sub, "-c", str(broken), "deployments", "list")
    assert overridden.returncode == 2
    assert "not valid YAML" in overridden.stderr
