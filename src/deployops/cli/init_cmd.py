"""``deployops init``: write an annotated deployops.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from deployops.cli._common import get_app

TEMPLATE = Path(__file__).resolve().parent.parent / "config" / "templates" / "deployops.yaml"
DEFAULT_OUTPUTS = "infrastructure/tf-outputs.json"


def register(app: typer.Typer) -> None:
    app.command(
        "init",
        help=(
            "Write an annotated deployops.yaml in the current folder.\n\n"
            "Examples:\n\n"
            "  deployops init\n\n"
            "  deployops init --project shop-api --force\n\n"
            "  deployops init --platform aws --terraform-outputs infrastructure/tf-outputs.json"
        ),
    )(init)


def _aws_environments(outputs_path: str, root: Path) -> tuple[str, dict[str, str]]:
    """The production environment on aws, wired to the Terraform outputs (read when the file
    exists already, so region, cluster and mode are the stack's own)."""
    from deployops.config.terraform_outputs import load_terraform_outputs

    facts = {"region": "ap-northeast-1", "mode": "services", "cluster": ""}
    file = Path(outputs_path)
    if not file.is_absolute():
        file = root / file
    if file.is_file():
        import json

        outputs = load_terraform_outputs(file)
        mode = json.loads(file.read_text(encoding="utf-8")).get("deployment_mode", {})
        facts = {
            "region": outputs.region,
            "mode": str(mode.get("value") or "services") if isinstance(mode, dict) else "services",
            "cluster": outputs.cluster,
        }
    text = (
        "  production:\n"
        "    platform: aws        # ECS on Fargate behind an ALB, through boto3 (docs/aws.md)\n"
        "    aws:\n"
        f"      region: {facts['region']}\n"
        f"      mode: {facts['mode']}        # services: a service per colour; ecs-native: "
        "ECS's own BLUE_GREEN\n"
        f"      terraform_outputs: {outputs_path}   # `terraform -chdir=infrastructure output "
        "-json > tf-outputs.json`\n"
        "      profile: ''        # a named AWS profile; empty: the default credential chain\n"
        "      role_arn: ''       # a role to assume first (least privilege: docs/aws.md)\n"
    )
    return text, facts


def init(
    ctx: typer.Context,
    project: Annotated[
        str | None, typer.Option("--project", help="Project name (default: folder name).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    platform: Annotated[
        Literal["local", "aws"],
        typer.Option(
            "--platform",
            help="Where production runs: local (everything on this machine) or aws (ECS and "
            "ALB built by infrastructure/, read from its Terraform outputs).",
        ),
    ] = "local",
    terraform_outputs: Annotated[
        str,
        typer.Option(
            "--terraform-outputs",
            help="With --platform aws: the `terraform output -json` file, relative to the "
            "project folder.",
        ),
    ] = DEFAULT_OUTPUTS,
) -> None:
    import re

    from deployops.errors import ConfigError

    app = get_app(ctx)
    target = app.config_path or Path.cwd() / "deployops.yaml"
    if target.exists() and not force:
        raise ConfigError(
            f"{target} already exists",
            path="deployops.yaml",
            hint="pass --force to overwrite it, or edit it and run `deployops config validate`",
        )
    name = project or re.sub(r"[^a-z0-9-]+", "-", target.resolve().parent.name.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = "my-service"
    text = TEMPLATE.read_text(encoding="utf-8").replace("my-service", name)
    facts: dict[str, str] = {}
    if platform == "aws":
        block, facts = _aws_environments(terraform_outputs, target.resolve().parent)
        text = re.sub(r"  production:\n    platform: local[^\n]*\n", lambda _: block, text, count=1)
    target.write_text(text, encoding="utf-8")
    if app.json:
        extra = {"platform": platform, **facts} if platform == "aws" else {}
        app.emit({"written": str(target), "project": name, **extra})
    elif platform == "aws":
        found = f" (cluster {facts['cluster']})" if facts.get("cluster") else ""
        app.console.print(
            f"wrote {target}: production on aws{found}\nnext: "
            + (
                ""
                if facts.get("cluster")
                else "`terraform -chdir=infrastructure apply`, then `terraform -chdir="
                f"infrastructure output -json > {terraform_outputs}`, then "
            )
            + "`deployops alarms sync -e production` and "
            "`deployops deploy -e production --version 1.0.0`",
            markup=False,
        )
    else:
        app.console.print(
            f"wrote {target}\nnext: edit services.web.command, then `deployops local up` and "
            "`deployops deploy -e development --version 1.0.0`"
        )
