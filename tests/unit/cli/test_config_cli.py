"""`deployops config validate|render|show|diff` (CFG-1..5) through the real entry point: exit
codes, output, and no secret value or traceback anywhere."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from deployops.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "config"
SECRET_ENV = {
    "DEPLOYOPS_SECRET_DATABASE_PASSWORD": "pw-VALUE-never-shown",
    "DEPLOYOPS_SECRET_JWT_SECRET": "jwt-VALUE-never-shown",
}


def run(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["deployops", *args])
    code: int | str | None = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    for value in SECRET_ENV.values():
        assert value not in out + err
    return int(code or 0), out, err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with the example configuration under config/, and its secrets exported."""
    doc = {
        "project": "shop-api",
        "environments": {"staging": {}, "production": {}},
        "services": {"web": {"port": 18080, "command": ["python3", "app.py"]}},
    }
    (tmp_path / "deployops.yaml").write_text(yaml.safe_dump(doc))
    shutil.copytree(EXAMPLES, tmp_path / "config")
    for key, value in SECRET_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cfg1_validate_clean_environment_exits_0_with_a_summary(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["config", "validate", "-e", "production"], monkeypatch, capsys)
    assert code == 0
    assert out.startswith("production: 15 settings valid")
    assert len(out.strip().splitlines()) == 1


def test_cfg1_validate_faulty_file_reports_every_problem_and_exits_2(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The planted production file: five problems, each `file:line:KEY: message`, exit 2."""
    args = ["config", "validate", "-e", "production", "-f", "config/faulty/production.yaml"]
    code, _, err = run(args, monkeypatch, capsys)
    assert code == 2
    assert "error: 5 problems:" in err
    for where in (":3:NODE_ENV:", ":6:DB_PORT:", ":9:DB_PASSWORD:", ":10:REDIS_HOTS:"):
        assert f"config/faulty/production.yaml{where}" in err
    assert "AWS_REGION: 'ap-northeast-9' is not an AWS region" in err
    assert "plant3d-Pa55word" not in err


def test_cfg3_validate_reports_an_unresolvable_secret_reference(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DEPLOYOPS_SECRET_JWT_SECRET")
    code, _, err = run(["config", "validate", "-e", "staging"], monkeypatch, capsys)
    assert code == 2
    assert "JWT_SECRET: unresolvable secret reference 'secret://jwt-secret'" in err
    code, _, _ = run(["config", "validate", "-e", "staging", "--offline"], monkeypatch, capsys)
    assert code == 0


def test_cfg3_render_formats_redact_secrets_and_ecs_uses_references(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["config", "render", "-e", "production"], monkeypatch, capsys)
    assert code == 0
    assert "DB_PASSWORD=[REDACTED]\n" in out
    assert "NODE_ENV=production\n" in out
    code, out, _ = run(
        ["config", "render", "-e", "production", "--format", "json"], monkeypatch, capsys
    )
    assert json.loads(out)["JWT_SECRET"] == "[REDACTED]"
    code, out, _ = run(
        ["config", "render", "-e", "production", "--format", "ecs"], monkeypatch, capsys
    )
    doc = json.loads(out)
    assert {"name": "DB_PASSWORD", "valueFrom": "database-password"} in doc["secrets"]
    names = [e["name"] for e in doc["environment"]]
    assert "DB_PASSWORD" not in names
    assert "PORT" not in names  # the platform sets PORT per replica
    assert {"name": "S3_BUCKET", "value": "shop-prod-uploads"} in doc["environment"]
    code, _, err = run(
        ["config", "render", "-e", "production", "--format", "toml"], monkeypatch, capsys
    )
    assert code == 2
    assert "use one of: dotenv, json, ecs" in err


def test_sec1_show_lists_value_and_source_layer_with_env_local_in_development(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SEC-1/CFG-1: `.env.local` overrides development; its password stays redacted."""
    shutil.copy(project / "config" / "env.local.example", project / "config" / ".env.local")
    code, out, _ = run(["-o", "json", "config", "show", "-e", "development"], monkeypatch, capsys)
    assert code == 0
    rows = {r["key"]: r for r in json.loads(out)}
    assert rows["DB_PASSWORD"]["value"] == "[REDACTED]"
    assert rows["DB_PASSWORD"]["layer"] == "env.local"
    assert "dev-only-password" not in out
    assert rows["REDIS_PORT"]["value"] == "6380"
    assert rows["REDIS_PORT"]["overrides"][0].startswith("file (config/environments/")
    assert rows["PORT"]["layer"] == "default"
    code, out, err = run(["config", "show", "-e", "staging"], monkeypatch, capsys)
    assert code == 0
    assert "warning:" in err
    assert "development only" in err
    assert "JWT_SECRET" in out


def test_cfg1_diff_lists_missing_keys_and_different_values(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        ["-o", "json", "config", "diff", "development", "production"], monkeypatch, capsys
    )
    assert code == 0
    entries = {e["key"]: e for e in json.loads(out)}
    assert entries["DB_PASSWORD"]["kind"] == "only_b"
    assert entries["DB_PASSWORD"]["production"] == "secret://database-password"
    assert entries["S3_BUCKET"]["kind"] == "only_b"
    assert entries["NODE_ENV"] == {
        "key": "NODE_ENV",
        "kind": "differs",
        "development": "development",
        "production": "production",
    }
    assert "APP_NAME" not in entries  # same on both sides
    code, out, _ = run(["config", "diff", "staging", "production"], monkeypatch, capsys)
    assert code == 0
    assert "LOG_LEVEL" in out


def test_cfg1_malformed_yaml_exits_2_with_line_and_column(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "config" / "environments" / "staging.yaml").write_text("APP_NAME: [shop\n")
    code, _, err = run(["config", "validate", "-e", "staging"], monkeypatch, capsys)
    assert code == 2
    assert "config/environments/staging.yaml:line 2, column 1: not valid YAML" in err


def test_cfg1_validate_without_environment_is_a_usage_error(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["config", "validate"], monkeypatch, capsys)
    assert code == 2
    assert "-e/--env" in err
