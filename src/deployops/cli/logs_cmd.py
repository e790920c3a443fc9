"""``deployops logs SERVICE``: the service's replica logs (and the platform's) on one screen."""

from __future__ import annotations

from typing import Annotated

import typer

from deployops.cli._common import get_app


def register(app: typer.Typer) -> None:
    app.command(
        "logs",
        help=(
            "Show a service's logs: every replica's output, newest files last.\n\n"
            "Examples:\n\n"
            "  deployops logs web\n\n"
            "  deployops logs web --since 10m --grep 'ERROR|Traceback'\n\n"
            "  deployops logs web --follow\n\n"
            "  deployops logs web --prune          # delete files older than the retention"
        ),
    )(logs)


def logs(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument(help="The service (e.g. web).")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="Only newer than this (e.g. 10m, 2h).")
    ] = None,
    grep: Annotated[
        str | None, typer.Option("--grep", help="Only lines matching this regular expression.")
    ] = None,
    platform: Annotated[
        bool, typer.Option("--platform", help="Also the daemon's and HAProxy's logs.")
    ] = False,
    lines: Annotated[int, typer.Option("-n", help="At most this many lines (newest).")] = 500,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete log files older than the logs retention.")
    ] = False,
) -> None:
    import re
    from collections import deque
    from datetime import timedelta

    from deployops.clock import SystemClock
    from deployops.config.durations import parse_duration
    from deployops.domain.backup import BackupTarget
    from deployops.drivers.local.logs import LocalLogs
    from deployops.errors import ConfigError

    app = get_app(ctx)
    env = app.environment_name()
    app.project.service(service)
    if app.project.environment(env).platform != "local":
        from deployops.errors import UnsupportedError

        raise UnsupportedError(
            "reading logs here works on the local platform; on AWS read the service's "
            "CloudWatch Logs group",
            path=f"environments.{env}.platform",
            hint="aws logs tail /ecs/<service> --follow",
        )
    clock = SystemClock()
    reader = LocalLogs(root=app.project.state_dir / "local" / env, clock=clock)
    if prune:
        policy = app.project.backups.policy(BackupTarget.LOGS)
        gone = reader.prune(policy.retention_s)
        if app.json:
            app.emit({"deleted": [str(p) for p in gone]})
        else:
            app.console.print(f"deleted {len(gone)} log file(s) older than the retention")
        return
    if grep:
        try:
            re.compile(grep)
        except re.error as exc:
            raise ConfigError(
                f"--grep is not a regular expression: {exc}",
                path="--grep",
                hint="e.g. --grep 'ERROR|Traceback'",
            ) from None
    start = None
    if since:
        try:
            start = clock.now() - timedelta(seconds=parse_duration(since))
        except ValueError as exc:
            raise ConfigError(str(exc), path="--since", hint="e.g. --since 10m") from None
    tail = deque(
        reader.read(service, since=start, grep=grep, include_platform=platform), maxlen=lines
    )
    for line in tail:
        if app.json:
            app.emit({"source": line.source, "line": line.text})
        else:
            app.console.print(f"{line.source} {line.text}", markup=False, highlight=False)
    if follow:
        try:
            for line in reader.follow(service, grep=grep):
                if app.json:
                    app.emit({"source": line.source, "line": line.text})
                else:
                    app.console.print(f"{line.source} {line.text}", markup=False)
        except KeyboardInterrupt:
            return
