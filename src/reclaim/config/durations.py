"""Durations written the way operators write them: ``7d``, ``36h``, ``90m``, ``1d12h``."""

from __future__ import annotations

import math
import re
from datetime import timedelta

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
# ASCII digits only: "12h" written in Arabic-Indic digits is not a duration an operator can read back
_PART = re.compile(r"([0-9]+)([wdhms])", re.ASCII)
_WHOLE = re.compile(r"^(?:[0-9]+[wdhms])+$", re.ASCII)
#: the longest duration accepted (a century): anything longer is a typo, and timedelta overflows
MAX = timedelta(days=36525)
_TOO_LONG = "is longer than 36525d (a century); use a shorter duration"


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse ``"7d"``, ``"36h"``, ``"90m"``, ``"1d12h"``, ``"0"`` or a number of seconds.

    Raises ``ValueError`` with the accepted forms when the text is not a duration
    (anything but a string, a number or a timedelta included), is negative, not
    finite or longer than :data:`MAX`.
    """
    if isinstance(text, timedelta):
        if text < timedelta(0) or text > MAX:
            raise ValueError(f"{text} {_TOO_LONG}" if text > MAX else "a duration cannot be negative")
        return text
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError("expected a duration such as '7d', '36h', '90m' or '30s'")
    if isinstance(text, int | float):
        if isinstance(text, float) and not math.isfinite(text):
            raise ValueError(f"{text} is not a finite number of seconds")
        if text < 0:
            raise ValueError("a duration cannot be negative")
        if text > MAX.total_seconds():
            raise ValueError(f"{text} seconds {_TOO_LONG}")
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
    if seconds > MAX.total_seconds():
        raise ValueError(f"{text!r} {_TOO_LONG}")
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
