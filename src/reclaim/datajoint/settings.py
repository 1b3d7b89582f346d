"""The collector's settings in DataJoint's own style: ``gc.*`` keys with dot notation.

``dj.config`` is a closed pydantic model (unknown keys are rejected), so the
``gc.*`` keys live beside it, read and written the same way::

    from reclaim.datajoint import config
    config["gc.grace_seconds"] = 3 * 86400
    config["gc.mode"] = "move"

Each key also reads an environment variable, as DataJoint's own settings do
(``gc.grace_seconds`` <- ``DJ_GC_GRACE_SECONDS``). Values set in code win.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from typing import Any

__all__ = ["DEFAULTS", "GCSettings", "config"]

DEFAULTS: dict[str, Any] = {
    "gc.grace_seconds": 7 * 86400,
    "gc.min_age_seconds": 86400,
    "gc.mode": "move",
    "gc.max_fraction": 0.5,
    "gc.trash_prefix": "_trash/",
    "gc.catalog_schema": "reclaim",
}
_TYPES: dict[str, type] = {
    "gc.grace_seconds": float,
    "gc.min_age_seconds": float,
    "gc.mode": str,
    "gc.max_fraction": float,
    "gc.trash_prefix": str,
    "gc.catalog_schema": str,
}
_MODES = ("move", "mark")


def _env_name(key: str) -> str:
    return "DJ_" + key.replace(".", "_").upper()


class GCSettings(MutableMapping[str, Any]):
    """``gc.*`` settings: code, then ``DJ_GC_*`` environment variables, then :data:`DEFAULTS`."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def _check(self, key: str) -> None:
        if key not in DEFAULTS:
            raise KeyError(f"Setting {key!r} not found (known: {', '.join(sorted(DEFAULTS))})")

    def _coerce(self, key: str, value: Any) -> Any:
        try:
            converted = _TYPES[key](value)
        except (TypeError, ValueError):
            raise ValueError(f"{key}: {value!r} is not a {_TYPES[key].__name__}") from None
        if key == "gc.mode" and converted not in _MODES:
            raise ValueError(f"gc.mode: {value!r} is not one of {', '.join(_MODES)}")
        if key.endswith("_seconds") and converted < 0:
            raise ValueError(f"{key}: must not be negative")
        return converted

    def __getitem__(self, key: str) -> Any:
        self._check(key)
        if key in self._values:
            return self._values[key]
        env = os.environ.get(_env_name(key))
        return self._coerce(key, env) if env is not None else DEFAULTS[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._check(key)
        self._values[key] = self._coerce(key, value)

    def __delitem__(self, key: str) -> None:
        self._check(key)
        self._values.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(DEFAULTS)

    def __len__(self) -> int:
        return len(DEFAULTS)

    def __repr__(self) -> str:
        return f"GCSettings({ {key: self[key] for key in DEFAULTS} })"


config = GCSettings()
"""The process's ``gc.*`` settings."""
