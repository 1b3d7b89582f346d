"""Durations written the way operators write them: ``7d``, ``36h``, ``90m``, ``1d12h``."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([wdhms])")
_WHOLE = re.compile(r"^(?:\d+[wdhms])+$")


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse ``"7d"``, ``"36h"``, ``"90m"``, ``"1d12h"``, ``"0"`` or a number of seconds.

    Raises ``ValueError`` with the accepted forms when the text is not a duration.
    """
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ValueError("expected a duration such as '7d', '36h', '90m' or '30s'")
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=text)
    compact = text.strip().replace(" ", "").lower()
    if compact == "0":
        return timedelta(0)
    if not _WHOLE.match(compact):
        raise ValueError(
            f"{text!r} is not a duration; use a number with a unit: "
            "'7d', '36h', '90m', '30s', '2w' or combinations like '1d12h'"
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(compact))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Render a duration in the same compact form :func:`parse_duration` reads."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0"
    parts = []
    for unit in "dhms":
        size = _UNITS[unit]
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
