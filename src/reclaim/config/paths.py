"""Relative paths in a configuration resolve against the config file's directory.

reclaim runs from cron, systemd timers and CI, whose working directory is
rarely the one the operator had in mind. So every path a ``reclaim.toml``
holds means the same thing wherever the command runs from:

- SQLite URLs (``sqlite:///app.sqlite``, the form ``reclaim init`` writes) in
  ``[catalog]`` and ``[databases.*]``: a relative file is taken relative to the
  directory of the config file; ``sqlite:////abs/path``, ``:memory:`` and
  ``file:`` URIs are left as they are.
- Local stores given as a plain path (``blobs``, ``../shared/blobs``) or a
  relative ``file:`` URL (``file:blobs``, ``file://./blobs``).
- The default catalog (no ``[catalog] url``) is a SQLite file beside the config.

``~`` is expanded first. A configuration built in Python without a file resolves
against the working directory, as before.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from reclaim.config.model import Config

__all__ = ["resolve_paths", "sqlite_path"]

_SQLITE = re.compile(r"^(?P<head>sqlite(?:\+[A-Za-z0-9_]+)?:///)(?P<path>[^?]*)(?P<query>\?.*)?$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://")


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, or ``None`` (not SQLite, in memory, or a ``file:`` URI)."""
    match = _SQLITE.match(url)
    if match is None:
        return None
    path = match.group("path")
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(os.path.expanduser(path))


def _sqlite_url(url: str, base: Path) -> str:
    match = _SQLITE.match(url)
    path = sqlite_path(url)
    if match is None or path is None or path.is_absolute():
        return url
    return f"{match.group('head')}{base / path}{match.group('query') or ''}"


def _store_url(url: str, base: Path) -> str:
    if url.startswith(("file://./", "file://../")):
        return f"file://{base / url[len('file://') :]}"
    if url.startswith("file:") and not url.startswith("file://"):
        relative = Path(os.path.expanduser(url[len("file:") :]))
        return f"file://{relative if relative.is_absolute() else base / relative}"
    if _SCHEME.match(url) or not url.strip():
        return url
    path = Path(os.path.expanduser(url))
    return url if path.is_absolute() else str(base / path)


def resolve_paths(config: Config, base: str | os.PathLike[str] | None = None) -> Config:
    """``config`` with every relative path made absolute against ``base``.

    ``base`` defaults to the directory of ``config.source_path`` (the config
    file), else the working directory. Returns a new, equal-but-resolved
    configuration; nothing on disk is touched.
    """
    if base is None:
        base = Path(config.source_path).resolve().parent if config.source_path else Path.cwd()
    root = Path(base)
    catalog = config.catalog
    if catalog.url:
        catalog = catalog.model_copy(update={"url": _sqlite_url(catalog.url, root)})
    databases = {
        name: db.model_copy(update={"url": _sqlite_url(db.url, root)})
        for name, db in config.databases.items()
    }
    stores = {
        name: store.model_copy(update={"url": _store_url(store.url, root)})
        for name, store in config.stores.items()
    }
    return config.model_copy(update={"catalog": catalog, "databases": databases, "stores": stores})
