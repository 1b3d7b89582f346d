"""Stores: where the objects live, behind one narrow interface.

A store is opened by URL (:func:`open_store`) and implements the
:class:`Store` protocol: an ordered listing, ``stat``, ``exists``, ``read``,
``write``, ``move`` and a batched ``delete``, with the error contract described
in :mod:`reclaim.stores.base` (missing key: ``FileNotFoundError``; existing
move destination: ``FileExistsError``; anything else: ``StoreError``). Every
backend passes the same conformance suite (``tests/stores/suite.py``).
"""

from reclaim.stores.base import ObjectInfo, Store, validate_key
from reclaim.stores.registry import check_store_url, default_mode, open_store, register_scheme

__all__ = [
    "ObjectInfo",
    "Store",
    "check_store_url",
    "default_mode",
    "open_store",
    "register_scheme",
    "validate_key",
]
