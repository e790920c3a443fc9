"""The schema (CFG-2..5) and how a project extends it in YAML; bad input of every kind is
reported together, with file, path and fix, never a secret value."""

from __future__ import annotations

from pathlib import Path

from deployops.config.appconfig import DEFAULT_SCHEMA, ConfigPaths, load, parse_dotenv
from deployops.config.appconfig.schema import FieldSpec
from deployops.errors import ConfigIssue

NO_SECRETS: dict[str, str] = {}


def _paths(folder: Path, env: str, text: str, schema: str | None = None) -> ConfigPaths:
    (folder / "environments").mkdir(parents=True, exist_ok=True)
    (folder / "environments" / f"{env}.yaml").write_text(text)
    if schema is not None:
        (folder / "schema.yaml").write_text(schema)
    return ConfigPaths(dir=folder)


def _issues(paths: ConfigPaths, env: str) -> dict[str, ConfigIssue]:
    _, issues = load(paths, env, environ=NO_SECRETS, resolve_secrets=False)
    return {i.path: i for i in issues}


def test_cfg2_port_node_env_app_name_rules(tmp_path: Path) -> None:
    """CFG-2: PORT 1-65535 (default 3000), NODE_ENV one of three and equal to the env."""
    paths = _paths(tmp_path, "staging", "PORT: 70000\nNODE_ENV: prod\n")
    issues = _issues(paths, "staging")
    assert "above the maximum 65535" in issues["PORT"].message
    assert "use one of: development, staging, production" in issues["NODE_ENV"].message
    assert "required in staging" in issues["APP_NAME"].message
    cfg, ok = load(_paths(tmp_path, "qa", "APP_NAME: a\n"), "qa", resolve_secrets=False)
    assert cfg.values["PORT"].text == "3000"
    # NODE_ENV defaults to the environment's name, which must be one of the allowed three
    assert [i.path for i in ok] == ["NODE_ENV"]


def test_cfg5_region_and_bucket_names_are_checked() -> None:
    """CFG-5: AWS_REGION must be a real region, S3_BUCKET a valid bucket name."""
    region = DEFAULT_SCHEMA.fields["AWS_REGION"]
    bucket = DEFAULT_SCHEMA.fields["S3_BUCKET"]
    assert region.default == "ap-northeast-1"
    assert region.check("eu-west-3", "production") == ("eu-west-3", [])
    assert region.check("ap-northeast-9", "production")[0] is None
    assert bucket.check("shop-prod-uploads", "production") == ("shop-prod-uploads", [])
    for bad, why in [
        ("ab", "3 to 63"),
        ("Shop_Uploads", "lowercase"),
        ("shop..uploads", "adjacent periods"),
        ("192.168.1.10", "IP address"),
        ("xn--shop", "must not begin"),
        ("shop-s3alias", "must not end"),
    ]:
        value, problems = bucket.check(bad, "production")
        assert value is None
        assert why in problems[0]


def test_cfg3_database_keys_required_only_in_production(tmp_path: Path) -> None:
    """CFG-3: DB_* are mandatory in production, optional elsewhere."""
    assert _issues(_paths(tmp_path, "staging", "APP_NAME: shop\n"), "staging") == {}
    issues = _issues(_paths(tmp_path, "production", "APP_NAME: shop\n"), "production")
    assert set(issues) == {"DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD"}
    assert "DB_PASSWORD: secret://db-password" in issues["DB_PASSWORD"].message


def test_cfg1_project_extends_and_tightens_the_schema_in_yaml(tmp_path: Path) -> None:
    """CFG-1: type, default, required_in, allowed, pattern and secret, without Python."""
    schema = (
        "keys:\n"
        "  APP_NAME: {pattern: '[a-z]+'}\n"
        "  WORKERS: {type: int, min: 1, max: 8, default: 2}\n"
        "  LOG_LEVEL: {allowed: [debug, info], required_in: [staging]}\n"
        "  DEBUG: {type: bool, default: false}\n"
        "  API_KEY: {secret: true}\n"
    )
    paths = _paths(
        tmp_path,
        "staging",
        "APP_NAME: Shop1\nWORKERS: 9\nDEBUG: maybe\nAPI_KEY: literal-key-123\n",
        schema,
    )
    issues = _issues(paths, "staging")
    assert "does not match the pattern" in issues["APP_NAME"].message
    assert "above the maximum 8" in issues["WORKERS"].message
    assert "required in staging" in issues["LOG_LEVEL"].message
    assert "true or false" in issues["DEBUG"].message
    assert "literal value is not allowed in staging" in issues["API_KEY"].message
    assert all("literal-key-123" not in i.message for i in issues.values())
    good = _paths(tmp_path, "staging", "APP_NAME: shop\nLOG_LEVEL: info\nDEBUG: yes\n")
    cfg, found = load(good, "staging", environ=NO_SECRETS, resolve_secrets=False)
    assert found == []
    assert cfg.environment["WORKERS"] == "2"
    assert cfg.environment["DEBUG"] == "true"


def test_cfg1_a_broken_schema_is_reported_with_paths_and_suggestions(tmp_path: Path) -> None:
    schema = (
        "extend: default\n"
        "keys:\n"
        "  lower_case: {}\n"
        "  WORKERS: {typ: int, default: many}\n"
        "  LEVEL: {type: float, pattern: '[', required_in: 3}\n"
    )
    issues = _issues(_paths(tmp_path, "staging", "APP_NAME: shop\n", schema), "staging")
    assert "did you mean 'extends'" in issues["extend"].message
    assert "UPPER_SNAKE_CASE" in issues["keys.lower_case"].message
    assert "did you mean 'type'" in issues["keys.WORKERS.typ"].message
    assert "use one of: str, int, bool" in issues["keys.LEVEL.type"].message
    assert "regular expression" in issues["keys.LEVEL.pattern"].message
    assert "environment names" in issues["keys.LEVEL.required_in"].message


def test_cfg1_malformed_yaml_reports_line_and_column(tmp_path: Path) -> None:
    paths = _paths(tmp_path, "staging", "APP_NAME: shop\nDB_HOST: [unclosed\nDB_PORT: 1\n")
    _, issues = load(paths, "staging", resolve_secrets=False)
    assert len(issues) == 1
    assert issues[0].path.startswith("line ")
    assert "column" in issues[0].path
    assert "not valid YAML" in issues[0].message


def test_cfg1_wrong_shapes_and_duplicate_keys_are_each_reported(tmp_path: Path) -> None:
    paths = _paths(
        tmp_path,
        "staging",
        "APP_NAME: shop\nDB_HOST: [a, b]\nAPP_NAME: again\nREDIS_PROT: 1\n",
    )
    issues = _issues(paths, "staging")
    assert "single value" in issues["DB_HOST"].message
    assert "duplicate key (first on line 1)" in issues["APP_NAME"].message
    assert "did you mean 'REDIS_PORT'" in issues["REDIS_PROT"].message


def test_sec1_bad_env_local_lines_are_reported_without_their_content(tmp_path: Path) -> None:
    """SEC-1: a bad `.env.local` line is named by number; its text (maybe a secret) is not."""
    text = (
        "# comment\n"
        "GOOD=1\n"
        "just-a-password-line\n"
        "1BAD=x\n"
        'QUOTED="unterminated-s3cret\n'
        "export REDIS_PORT=6380 # inline comment\n"
        "TRAIL='a' b\n"
    )
    entries, issues = parse_dotenv(text, ".env.local")
    assert [(e.key, e.text) for e in entries] == [("GOOD", "1"), ("REDIS_PORT", "6380")]
    assert [i.file for i in issues] == [
        ".env.local:3",
        ".env.local:4",
        ".env.local:5",
        ".env.local:7",
    ]
    rendered = " ".join(i.render() for i in issues)
    assert "just-a-password-line" not in rendered
    assert "unterminated-s3cret" not in rendered


def test_cfg1_field_spec_messages_never_show_a_secret_value() -> None:
    spec = FieldSpec(key="TOKEN", type="int", secret=True)
    value, problems = spec.check("hunter2", "development")
    assert value is None
    assert "hunter2" not in problems[0]
