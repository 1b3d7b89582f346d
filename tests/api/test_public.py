"""The public API is curated: ``reclaim`` exports exactly its ``__all__`` (and its subpackages)."""

from __future__ import annotations

import reclaim


def test_public_api_is_curated() -> None:
    public = {name for name in dir(reclaim) if not name.startswith("_")}
    modules = {"api", "catalog", "cli", "config", "errors", "lifecycle", "references", "rows", "stores"}
    assert public - modules == set(reclaim.__all__) - {"__version__"}
