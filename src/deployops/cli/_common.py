"""Small helpers shared by command modules."""

from __future__ import annotations

from datetime import datetime

import typer

from deployops.cli.app import App

__all__ = ["fmt_time", "get_app"]


def get_app(ctx: typer.Context) -> App:
    obj = ctx.find_root().obj
    assert isinstance(obj, App)
    return obj


def fmt_time(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"
