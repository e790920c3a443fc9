"""Durations written as ``90``, ``"90s"``, ``"5m"``, ``"24h"``, ``"90d"`` or ``"1h30m"``."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

__all__ = ["Duration", "parse_duration"]

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or a duration string.

    >>> parse_duration("1h30m")
    5400.0
    """
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 30s, 5m, 24h, 90d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for m in _PART.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m[1]) * _UNITS[m[2]]
                pos = m.end()
            if pos != len(text) or not text:
                raise ValueError(
                    f"{value!r} is not a duration; write seconds or e.g. 30s, 5m, 24h, 90d"
                ) from None
    else:
        raise ValueError("a duration is a number of seconds or a string like 30s, 5m, 24h, 90d")
    if not math.isfinite(seconds):
        # "nan", "inf" and 1e400 parse as floats; no wait or window can be that long.
        raise ValueError(f"{value!r} is not a finite duration; write e.g. 30s, 5m, 24h, 90d")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
