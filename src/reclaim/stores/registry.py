"""Opening a store by URL: a registry of factories keyed by URL scheme.

=====================  ===========================================================
``file://``, a path    :class:`~reclaim.stores.local.LocalStore`
``memory://``          :class:`~reclaim.stores.memory.MemoryStore` (tests, demo)
``s3://``, ``s3a://``  :class:`~reclaim.stores.s3.S3Store` (``reclaim[s3]``)
anything fsspec knows  :class:`~reclaim.stores.fsspec_store.FsspecStore`
                       (``gs``/``gcs``: ``reclaim[gcs]``; ``az``/``abfs``: ``reclaim[azure]``)
=====================  ===========================================================

:func:`register_scheme` adds or replaces a factory (a backend of one's own,
or a wrapper that adds logging or retries around a built-in one).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

from reclaim.config.secrets import mask_url
from reclaim.errors import StoreError
from reclaim.stores.base import Store
from reclaim.stores.fsspec_store import FsspecStore, secret_values, store_error

__all__ = ["StoreFactory", "check_store_url", "default_mode", "open_store", "register_scheme"]

StoreFactory = Callable[[str, str, Mapping[str, Any]], Store]
"""``factory(name, url, storage_options) -> Store``."""

_SCHEME = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*)://")
_EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "adl": "azure",
}

_lock = threading.Lock()
_factories: dict[str, StoreFactory] = {}


def register_scheme(scheme: str, factory: StoreFactory) -> None:
    """Make :func:`open_store` use ``factory`` for URLs with ``scheme`` (case-insensitive).

    Replaces any factory registered before, built-ins included. Raises
    ``ValueError`` for a malformed scheme.
    """
    if not _SCHEME.match(f"{scheme}://"):
        raise ValueError(f"invalid URL scheme {scheme!r}")
    with _lock:
        _factories[scheme.lower()] = factory


def open_store(name: str, url: str, storage_options: Mapping[str, Any] | None = None) -> Store:
    """Open the store ``name`` at ``url`` with the factory registered for its scheme.

    A URL without a scheme is a local path. Raises ``StoreError`` (naming the
    store, with the URL's password masked) for an unknown scheme, a backend
    whose package is not installed (saying which extra to install) or an
    invalid URL. Opening does not touch the storage, so it is always safe.
    """
    match = _SCHEME.match(url)
    scheme = match.group("scheme").lower() if match else "file"
    with _lock:
        factory = _factories.get(scheme)
    if factory is None:
        factory = _fsspec_factory(name, url, scheme, dict(storage_options or {}))
    return factory(name, url, dict(storage_options or {}))


def check_store_url(name: str, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
    """Raise ``StoreError`` when no installed backend can open ``url``; touches nothing.

    Catches, before any command starts, what :func:`open_store` would only find
    later: an unknown scheme, a backend whose package is missing (naming the
    extra to install), or an fsspec filesystem that needs arguments reclaim
    cannot give it (``ftp://`` wants a ``host`` storage option).
    """
    match = _SCHEME.match(url)
    scheme = match.group("scheme").lower() if match else "file"
    with _lock:
        registered = scheme in _factories
    if not registered:
        _fsspec_factory(name, url, scheme, dict(storage_options or {}))
    elif scheme in ("s3", "s3a") and importlib.util.find_spec("s3fs") is None:
        raise _missing_backend(name, scheme)


def default_mode(store: Store) -> Literal["move", "mark"]:
    """The quarantine mode for ``store``: ``move`` where moves are atomic renames, else ``mark``.

    On object stores a move is copy + delete, which doubles the bytes for a
    while and is not atomic, so marking in the journal is the better default.
    """
    return "move" if store.atomic_move else "mark"


def _missing_backend(name: str, scheme: str, exc: BaseException | None = None) -> StoreError:
    from fsspec.registry import known_implementations

    extra = _EXTRAS.get(scheme)
    if extra:
        hint = f"install it with: pip install 'reclaim[{extra}]'"
    elif scheme in known_implementations:
        hint = known_implementations[scheme].get("err") or f"install the fsspec implementation for {scheme!r}"
    else:
        hint = (
            "reclaim reaches file://, memory://, s3:// (reclaim[s3]), gs:// (reclaim[gcs]), "
            "az:// (reclaim[azure]) and the schemes of installed fsspec implementations"
        )
    reason = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    return StoreError(name, f"no store backend for URL scheme {scheme!r}{reason}; {hint}")


def _local(name: str, url: str, options: Mapping[str, Any]) -> Store:
    from reclaim.stores.local import LocalStore

    if options:
        raise StoreError(name, f"local stores take no storage options, got {sorted(options)}")
    if url.startswith("file://"):
        host, slash, path = url[len("file://") :].partition("/")
        if host not in ("", "localhost") or not slash:
            raise StoreError(name, f"file URLs must be absolute (file:///path), not {mask_url(url)!r}")
        path = "/" + path
    else:
        path = url
    if not path:
        raise StoreError(name, "the store path is empty")
    return LocalStore(name, url, os.path.expanduser(path))


def _memory(name: str, url: str, options: Mapping[str, Any]) -> Store:
    from reclaim.stores.memory import MemoryStore

    if options:
        raise StoreError(name, f"memory stores take no storage options, got {sorted(options)}")
    return MemoryStore(name, url)


def _s3(name: str, url: str, options: Mapping[str, Any]) -> Store:
    try:
        from reclaim.stores.s3 import S3Store

        settings = dict(options)  # a copy: s3fs never sees list_partitions
        partitions = settings.pop("list_partitions", 1)
        return S3Store(name, url, settings, partitions=partitions)
    except ImportError as exc:
        raise _missing_backend(name, "s3", exc) from None


def _fsspec_factory(name: str, url: str, scheme: str, options: Mapping[str, Any]) -> StoreFactory:
    """The generic adapter for a scheme fsspec knows; ``StoreError`` if it does not or is not installed."""
    import fsspec

    try:
        fs_class = fsspec.get_filesystem_class(scheme)
    except ImportError as exc:
        raise _missing_backend(name, scheme, exc) from None
    except ValueError:
        raise _missing_backend(name, scheme) from None
    # a filesystem constructed without its required arguments fails half-built (and its
    # __del__ then prints a traceback), so they are checked first
    required = [
        p.name
        for p in list(inspect.signature(fs_class.__init__).parameters.values())[1:]
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    missing = [argument for argument in required if argument not in options]
    if missing:
        raise StoreError(
            name,
            f"the fsspec backend for {scheme!r} ({fs_class.__name__}) needs storage_options "
            f"{', '.join(missing)}; reclaim passes only storage_options to it",
        )

    def factory(name: str, url: str, options: Mapping[str, Any]) -> Store:
        settings = dict(options)
        # a listing must reflect the store now, never a cached earlier listing
        settings.setdefault("use_listings_cache", False)
        settings["skip_instance_cache"] = True
        try:
            fs = fs_class(**settings)
            root = str(fs._strip_protocol(url)).rstrip("/")
        except ImportError as exc:
            raise _missing_backend(name, scheme, exc) from None
        except Exception as exc:
            raise store_error(name, "cannot open the store", exc, secrets=secret_values(options)) from None
        if not root:
            raise StoreError(name, f"the store URL must name a bucket or directory: {mask_url(url)!r}")
        return FsspecStore(name, url, fs, root, secrets=secret_values(options))

    return factory


for _scheme, _factory in [("file", _local), ("memory", _memory), ("s3", _s3), ("s3a", _s3)]:
    register_scheme(_scheme, _factory)
