"""Stores: where the objects live, behind one narrow interface.

A store is opened by URL (:func:`open_store`) and implements the
:class:`Store` protocol: an ordered listing (of a prefix, or of a key range),
``stat``, ``stat_many``, ``exists``, ``read``, ``write``, ``move``, a batched
``delete`` and ``close``, with the error contract described in
:mod:`reclaim.stores.base` (missing key: ``FileNotFoundError``; existing move
destination: ``FileExistsError``; anything else: ``StoreError``). Optional
capabilities are protocols of their own, checked with ``isinstance``:
:class:`VersionedStore` (restore purged objects from kept versions; see
:func:`is_versioned`) and :class:`PartitionableStore` (split a listing into
key ranges). Every backend passes the same conformance suite
(``tests/stores/suite.py``).
"""

from reclaim.stores.base import (
    ObjectInfo,
    PartitionableStore,
    Store,
    Version,
    VersionedStore,
    is_versioned,
    validate_key,
)
from reclaim.stores.registry import check_store_url, default_mode, open_store, register_scheme

__all__ = [
    "ObjectInfo",
    "PartitionableStore",
    "Store",
    "Version",
    "VersionedStore",
    "check_store_url",
    "default_mode",
    "is_versioned",
    "open_store",
    "register_scheme",
    "validate_key",
]
