"""Data sizes: the bytes of the objects a collection's rows reference.

A collection's ``row_bytes`` is the size of its rows as archived JSON; what
an operator wants to know ("336 TB of orphaned assets") is ``data_bytes``,
the bytes of the data the rows stand for. :class:`DataSizer` measures it for
a page of rows, one of two ways:

- a declared ``size_column`` of the collection's table: the sum of its values;
- otherwise the store reference sources that read the collection's table
  (``table`` + ``column``, optionally a JSON field): each row's value is mapped
  to its key as the source maps it (``strip_prefix``, ``add_prefix``), and
  the keys' sizes are read from the store (``stat_many``: one listing of the
  range on S3, a ``stat`` per key on a local directory); a ``prefix``
  reference counts every object under it, ``sidecars`` their own objects.

Keys are counted once per page; an object that rows of two pages reference
is counted twice. Objects that are missing count nothing. Sources given as a
``query`` or with a ``decoder`` cannot be followed into a row; a collection
with no other way to measure has ``data_bytes = None`` (not measured).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from reclaim.config import Config, ReferenceConfig
from reclaim.lifecycle.trust import key_problem
from reclaim.rows import CollectionTable
from reclaim.rows.table import Extractor, reference_selector
from reclaim.stores import Store

__all__ = ["DataSizer", "data_sizer"]


@dataclass(frozen=True)
class _Target:
    """One store reference that reads the collection's table."""

    store_name: str
    store: Callable[[], Store]
    ref: ReferenceConfig
    extractor: Extractor
    trash_prefix: str

    def key(self, row: Mapping[str, Any]) -> str | None:
        """The key the source makes of ``row``'s value, as its scan would; ``None``: no key here."""
        value = self.extractor.value(row)
        if value is None:
            return None
        strip = self.ref.strip_prefix or ""
        if strip:
            if not value.startswith(strip):
                return None  # another store's value
            value = value[len(strip) :]
        return (self.ref.add_prefix or "") + value


@dataclass(frozen=True)
class DataSizer:
    """Measures ``data_bytes`` for pages of a collection's rows (see the module docstring)."""

    size_column: str | None
    targets: tuple[_Target, ...]

    def measure(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """The bytes of the data ``rows`` reference; raises what the store raises."""
        if self.size_column is not None:
            return sum(_as_int(row.get(self.size_column)) for row in rows)
        total = 0
        by_store: dict[str, tuple[_Target, set[str], set[str]]] = {}
        for target in self.targets:
            _, keys, prefixes = by_store.setdefault(target.store_name, (target, set(), set()))
            for row in rows:
                key = target.key(row)
                if key is None:
                    continue
                keys.add(key)
                keys.update(key + suffix for suffix in target.ref.sidecars)
                if target.ref.kind == "prefix":
                    prefixes.add(key.rstrip("/") + "/")
        for target, keys, prefixes in by_store.values():
            store = target.store()
            for prefix in sorted(prefixes):
                if key_problem(prefix + "k", target.trash_prefix) is not None:
                    continue
                unsized: list[str] = []
                for info in store.list(prefix, skip=(target.trash_prefix,)):
                    if info.size is None:
                        unsized.append(info.key)
                    else:
                        total += info.size
                keys.difference_update([k for k in keys if k.startswith(prefix)])  # counted by the listing
                keys.update(unsized)
            usable = sorted(k for k in keys if key_problem(k, target.trash_prefix) is None)
            total += sum(info.size or 0 for info in store.stat_many(usable).values())
        return total


def _as_int(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 0
    try:
        return max(0, int(Decimal(str(value))))
    except (InvalidOperation, ValueError):
        return 0  # a size column holding text that is no number counts nothing


def data_sizer(config: Config, ct: CollectionTable, store: Callable[[str], Store]) -> DataSizer | None:
    """How ``data_bytes`` of collection ``ct`` is measured, or ``None`` when it cannot be."""
    cfg = ct.config
    if cfg.size_column is not None:
        return DataSizer(cfg.size_column, ())
    extractors = {e.selector: e for e in ct.extractors}
    opened = {name: _opener(store, name) for name in config.stores}
    targets = []
    for name, store_cfg in config.stores.items():
        for ref in store_cfg.references:
            if (
                ref.query is not None
                or ref.decoder is not None
                or ref.database != cfg.database
                or ref.table != cfg.table
                or ref.table_schema != cfg.table_schema
            ):
                continue
            extractor = extractors.get(reference_selector(ref))
            if extractor is None:
                continue
            targets.append(_Target(name, opened[name], ref, extractor, store_cfg.trash_prefix))
    return DataSizer(None, tuple(targets)) if targets else None


def _opener(store: Callable[[str], Store], name: str) -> Callable[[], Store]:
    cache: list[Store] = []

    def opened() -> Store:
        if not cache:
            cache.append(store(name))
        return cache[0]

    opened.__name__ = f"store_{name}"
    return opened
