"""Durations as ops write them: ``30s``, ``5m``, ``1h30m``, ``250ms`` or ISO 8601 ``PT5M``.

A bare number is rejected: ``cooldown = 300`` could mean seconds or minutes, and guessing
is how a cooldown ends up sixty times too long. So is anything longer than
:data:`MAX_DURATION` (a year): no window, cooldown or pause is meant to last longer, and
``999999999d`` would otherwise overflow ``timedelta`` deep inside whatever used it.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

__all__ = ["MAX_DURATION", "Duration", "format_duration", "parse_duration"]

# the longest duration anything accepts (366 days, so "365d" and "8784h" both fit)
MAX_DURATION = timedelta(days=366)

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SHORT = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_ISO = re.compile(
    r"P(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)


def parse_duration(text: str) -> timedelta:
    """Parse ``30s`` / ``5m`` / ``1h30m`` / ``PT5M``; raise ``ValueError`` with a hint, also
    for a duration longer than :data:`MAX_DURATION`."""
    seconds = _seconds(text)
    if not math.isfinite(seconds) or seconds > MAX_DURATION.total_seconds():
        raise ValueError(
            f"duration {_shortened(text)!r} is longer than the maximum of "
            f"{format_duration(MAX_DURATION)}"
        )
    return timedelta(seconds=seconds)


@functools.lru_cache(maxsize=4096)
def _seconds(text: str) -> float:
    # cached: a config of 10,000 targets spells the same few durations 100,000 times
    compact = text.strip().replace(" ", "")
    if compact.upper().startswith("P"):
        match = _ISO.fullmatch(compact.upper())
        if match and compact.upper() not in ("P", "PT"):
            parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
            return (
                parts.get("d", 0.0) * 86400
                + parts.get("h", 0.0) * 3600
                + parts.get("m", 0.0) * 60
                + parts.get("s", 0.0)
            )
        raise ValueError(
            f"invalid ISO 8601 duration {_shortened(text)!r} (days and times only, e.g. 'PT5M')"
        )
    pieces = _SHORT.findall(compact)
    if compact and "".join(number + unit for number, unit in pieces) == compact:
        return sum(float(n) * _UNIT_SECONDS[u] for n, u in pieces)
    raise ValueError(
        f"invalid duration {_shortened(text)!r}: write e.g. '30s', '5m', '1h30m' or 'PT5M'"
    )


def _shortened(text: str, keep: int = 40) -> str:
    """``text`` cut for an error message: a megabyte of digits helps nobody."""
    return text if len(text) <= keep else f"{text[:keep]}…"


def _coerce(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (bool, int | float)):
        raise ValueError(
            f"a duration needs a unit: write '{value}s' or '{value}m', not a bare number"
        )
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"a duration must be a string such as '30s', got {type(value).__name__}")


@functools.lru_cache(maxsize=4096)
def format_duration(value: timedelta) -> str:
    """The shortest ``1h30m``-style spelling (used in summaries and audit records)."""
    total = value.total_seconds()
    if total == 0:
        return "0s"
    if total < 1:
        return f"{round(total * 1000)}ms"
    out = []
    remaining = total
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, remaining = divmod(remaining, size)
        if count:
            out.append(f"{int(count)}{unit}")
    if remaining:
        out.append(f"{remaining:g}s")
    return "".join(out)


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str),
]
