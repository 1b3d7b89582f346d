"""Rows as JSON and back, without losing a type a database column may hold.

JSON has no dates, decimals, bytes or UUIDs, so those values become one-key
objects tagged with ``$``: ``{"$datetime": "2026-11-22T07:00:00+00:00"}``,
``{"$decimal": "1.10"}``, ``{"$bytes": "<base64>"}``, ``{"$uuid": "..."}``,
``{"$date": ...}``, ``{"$time": ...}``, ``{"$timedelta": seconds}``. JSON column
values (dicts and lists) are wrapped as ``{"$json": value}`` so that a stored
document that happens to look like a tag is never mistaken for one. Decoding
turns every tag back into the Python value the driver accepts on insert.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

__all__ = ["decode_row", "decode_value", "encode_row", "encode_value"]


def encode_value(value: Any) -> Any:
    """``value`` as JSON-ready data (see the module docstring)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else {"$float": str(value)}
        )
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, time):
        return {"$time": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$timedelta": value.total_seconds()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, (dict, list, tuple)):
        return {"$json": value}
    return {"$str": str(value)}


_DECODERS: Final[dict[str, Callable[[Any], Any]]] = {
    "$datetime": datetime.fromisoformat,
    "$date": date.fromisoformat,
    "$time": time.fromisoformat,
    "$timedelta": lambda v: timedelta(seconds=v),
    "$decimal": Decimal,
    "$bytes": base64.b64decode,
    "$uuid": uuid.UUID,
    "$json": lambda v: v,
    "$float": float,
    "$str": str,
}


def decode_value(value: Any) -> Any:
    """The inverse of :func:`encode_value`."""
    if isinstance(value, dict) and len(value) == 1:
        ((tag, inner),) = value.items()
        decoder = _DECODERS.get(tag)
        if decoder is not None:
            return decoder(inner)
    return value


def encode_row(row: Mapping[str, Any]) -> str:
    """A row (column name to value) as compact JSON text, columns in table order."""
    return json.dumps({name: encode_value(v) for name, v in row.items()}, separators=(",", ":"))


def decode_row(text: str) -> dict[str, Any]:
    """The inverse of :func:`encode_row`."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("an archived row must be a JSON object")
    return {name: decode_value(v) for name, v in data.items()}
