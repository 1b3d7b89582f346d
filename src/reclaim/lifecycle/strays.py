"""Which store keys an expiring archived row releases: the other half of telling strays apart.

An archived row keeps, under a *selector*, each value a store's table
reference source reads from it (:mod:`reclaim.lifecycle.archived`). When the
row's archive expires, :func:`releaser` maps each such value to the keys it
covered in every store whose sources read that table: the key itself
(``strip_prefix`` removed, ``add_prefix`` put in front), its sidecar keys, or
for a ``prefix`` source the directory object. Those are recorded as released
(:mod:`reclaim.catalog.released`) in the transaction that deletes the row;
a store with ``strays = "report"`` collects a candidate only when it was
released so, and reports every other one as a stray.

A query source or a decoder source has no value-to-key mapping that reclaim
can apply to an archived value: the objects such rows held are strays once
unreferenced (reported, never touched: the safe side).
"""

from __future__ import annotations

from collections.abc import Iterable

from reclaim.catalog import ReleasedKey, Releaser
from reclaim.config import Config
from reclaim.config.model import ReferenceConfig
from reclaim.rows import reference_selector

__all__ = ["released_keys", "releaser"]


def released_keys(store: str, ref: ReferenceConfig, value: str, collection: str) -> list[ReleasedKey]:
    """The keys of ``store`` that ``value``, read by ``ref``, covered (none when it is another store's)."""
    strip = ref.strip_prefix or ""
    if strip and not value.startswith(strip):
        return []  # the value belongs to another store
    key = (ref.add_prefix or "") + value[len(strip) :]
    found = [ReleasedKey(store, key + suffix, "exact", collection) for suffix in ref.sidecars]
    if ref.kind == "prefix":
        directory = key.rstrip("/")
        if directory:
            found.append(ReleasedKey(store, directory, "prefix", collection))
    elif key:
        found.append(ReleasedKey(store, key, "exact", collection))
    return found


def releaser(config: Config) -> Releaser:
    """What :meth:`~reclaim.catalog.RowArchive.expire` calls for each reference of an expiring row."""
    readers: dict[tuple[str, str], list[tuple[str, ReferenceConfig]]] = {}
    for name, store in config.stores.items():
        for ref in store.references:
            if ref.table is None or ref.column is None or ref.decoder is not None:
                continue
            table = f"{ref.table_schema}.{ref.table}" if ref.table_schema else ref.table
            readers.setdefault((table, reference_selector(ref)), []).append((name, ref))

    def release(collection: str, table_name: str, selector: str, value: str) -> Iterable[ReleasedKey]:
        found: list[ReleasedKey] = []
        for store, ref in readers.get((table_name, selector), ()):
            found += released_keys(store, ref, value, collection)
        return found

    return release
