"""The reclaim configuration of a Django project, built from its settings and models.

:func:`reclaim_config` is what ``manage.py reclaim``, the Celery task and the
admin pages run with; :func:`config_toml` prints the equivalent
``reclaim.toml``. Built each time it is asked for, so a model added later is
picked up without configuration. What goes in:

- ``[databases]``: every ``settings.DATABASES`` alias a model, collection or
  the catalog uses (see :mod:`reclaim.django._mapping`);
- ``[stores]``: the storage of every file field, named by its ``STORAGES``
  alias (a storage made in the model itself: ``app_model_field``); storages
  writing to one location are one store, and a store inside another is refused
  (the outer store would take the inner one's files for orphans);
- each store's references: every file field of it (:mod:`reclaim.django._models`),
  then ``RECLAIM["references"]``;
- ``[collections]`` from ``RECLAIM["collections"]`` by model label, field
  names and Django lookups;
- ``RECLAIM["stores"][alias]``: a store's rules (``min_age``, ``grace``,
  ``mode``, ``exclude``, ``max_fraction``, ``action``, ``retention``);
- ``RECLAIM["catalog"]``: ``{"database": alias, "schema": ..., "table_prefix": ...}``
  or ``{"url": ...}``; default: the ``default`` database, tables prefixed ``reclaim_``;
- ``RECLAIM["config"]``: a ``reclaim.toml`` read last, adding or overriding
  anything; its reference lists are *added* to the discovered ones, never
  replace them (dropping a source would make its objects candidates).

A file field whose storage cannot be mapped fails the whole configuration
with a :class:`~reclaim.errors.ConfigError` naming the model and field, unless
``RECLAIM["fields"]["app.Model.field"] = {"store": name}`` names a store (of
the TOML file) for it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from reclaim.config import Config, format_duration, validate_config
from reclaim.config.paths import resolve_paths
from reclaim.django._mapping import (
    StoreSpec,
    UnmappedDatabase,
    UnmappedStorage,
    database_url,
    store_spec,
)
from reclaim.django._models import collection_table, compile_lookups, file_fields, model_column
from reclaim.errors import ConfigError

__all__ = ["build_raw", "config_toml", "reclaim_config"]

_STORE_RULES = {"min_age", "grace", "mode", "trash_prefix", "exclude", "max_fraction", "action", "retention"}
_REFERENCE_OPTIONS = {"kind", "sidecars", "strip_prefix", "add_prefix", "allow_empty", "name"}
_COLLECTION_OPTIONS = {"min_age", "retention", "action", "batch_size", "max_fraction"}


def reclaim_config() -> Config:
    """The configuration of this Django project (see the module docstring).

    Raises :class:`~reclaim.errors.ConfigError` naming the setting (or the
    model and field) that cannot be mapped, before anything is read or listed.
    """
    raw, path = build_raw()
    config = validate_config(raw, path=path)
    return resolve_paths(config) if path else config


def config_toml() -> str:
    """The ``reclaim.toml`` equivalent to :func:`reclaim_config`, with every credential a ``${VAR}``."""
    from reclaim.django._toml import dump_config

    raw, _path = build_raw()
    return dump_config(raw)


def _settings() -> tuple[Any, Mapping[str, Any]]:
    from django.conf import settings

    return settings, getattr(settings, "RECLAIM", {}) or {}


def build_raw() -> tuple[dict[str, Any], str | None]:
    """The configuration as TOML-shaped data (every ``$`` of a Django value doubled), and its TOML file."""
    settings, options = _settings()
    builder = _Builder(settings, options)
    try:
        raw = builder.build()
    except (UnmappedStorage, UnmappedDatabase, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc), field=builder.field) from None
    path = options.get("config")
    if path:
        raw = _merge(raw, _read_toml(Path(path)))
        return raw, str(path)
    return raw, None


class _Builder:
    def __init__(self, settings: Any, options: Mapping[str, Any]) -> None:
        self.settings = settings
        self.options = options
        self.field = "RECLAIM"
        self.databases: dict[str, dict[str, Any]] = {}
        self.stores: dict[str, dict[str, Any]] = {}
        self.specs: dict[str, StoreSpec] = {}

    def build(self) -> dict[str, Any]:
        raw: dict[str, Any] = {"catalog": self._catalog()}
        self._fields()
        self._extra_references()
        self._check_nesting()
        collections = self._collections()
        for alias, rules in (self.options.get("stores") or {}).items():
            self.field = f"RECLAIM['stores'][{alias!r}]"
            unknown = set(rules) - _STORE_RULES
            if unknown:
                raise ValueError(
                    f"{self.field}: unknown rules {sorted(unknown)} (known: {sorted(_STORE_RULES)})"
                )
            if alias in self.stores:
                self.stores[alias].update(_plain(rules))
        raw["databases"] = self.databases
        raw["stores"] = self.stores
        raw["collections"] = collections
        return _escape(raw)

    def _database(self, alias: str) -> str:
        if alias not in self.databases:
            databases = self.settings.DATABASES
            if alias not in databases:
                raise ValueError(f"{self.field}: no database {alias!r} in settings.DATABASES")
            self.databases[alias] = {"url": database_url(alias, databases[alias])}
        return alias

    def _catalog(self) -> dict[str, Any]:
        self.field = "RECLAIM['catalog']"
        catalog = dict(self.options.get("catalog") or {})
        if "url" not in catalog:
            alias = catalog.pop("database", "default")
            self._database(alias)
            catalog["url"] = self.databases[alias]["url"]
        return _plain(catalog)

    def _store_for(self, storage: Any, fallback: str) -> str:
        """The name of the store ``storage`` writes to, adding the store on first sight."""
        from django.core.files.storage import storages
        from django.utils.functional import LazyObject

        if isinstance(storage, LazyObject):
            storage._setup()
            storage = storage._wrapped
        name = fallback
        # the storages made so far, by alias (Django's handler caches them): a field's storage from
        # STORAGES is among them; the others are not made, since making one may need settings
        # (STATIC_URL) that a project without static files lacks
        made: dict[str, Any] = getattr(storages, "_storages", {})
        for alias, instance in made.items():
            if instance is storage:
                name = alias
                break
        spec = store_spec(storage)
        for known, other in self.specs.items():
            if other.identity() == spec.identity():
                return known  # two aliases, one location: one store, or each would collect the other's
        self.specs[name] = spec
        store: dict[str, Any] = {"url": spec.url, "references": []}
        if spec.options:
            store["storage_options"] = spec.options
        self.stores[name] = store
        return name

    def _fields(self) -> None:
        declared = self.options.get("fields") or {}
        for ref in file_fields():
            self.field = f"{ref.label} (a {type(ref.field).__name__})"
            extra = dict(declared.get(ref.label) or {})
            store = extra.pop("store", None)
            unknown = set(extra) - _REFERENCE_OPTIONS
            if unknown:
                raise ValueError(f"RECLAIM['fields'][{ref.label!r}]: unknown options {sorted(unknown)}")
            if store is None:
                fallback = ref.label.replace(".", "_").lower()
                try:
                    store = self._store_for(ref.field.storage, fallback)
                except UnmappedStorage as exc:
                    raise ValueError(
                        f"model {ref.model._meta.label} field {ref.field.name!r}: {exc}"
                    ) from None
            elif store not in self.stores:
                # a store the TOML file declares: its references are added there
                self.stores[store] = {"references": []}
            self._database(ref.database)
            source: dict[str, Any] = {
                "name": ref.label,
                "database": ref.database,
                "table": ref.table,
                "column": ref.column,
                "where": f"{_quote(ref.database, ref.column)} <> ''",
            }
            if ref.optional:
                source["allow_empty"] = True  # every row may legitimately have no file
            source.update(_plain(extra))
            self.stores[store]["references"].append(source)

    def _extra_references(self) -> None:
        for index, spec in enumerate(self.options.get("references") or []):
            self.field = f"RECLAIM['references'][{index}]"
            spec = dict(spec)
            store = spec.pop("store", None)
            if store is None:
                raise ValueError(f"{self.field}: 'store' is required (a STORAGES alias or a store name)")
            if store not in self.stores:
                from django.core.files.storage import storages

                if store in getattr(self.settings, "STORAGES", {}):
                    self._store_for(storages[store], store)
                else:
                    self.stores[store] = {"references": []}
            model, table, column = model_column(spec.pop("model", ""), spec.pop("field", ""), self.field)
            from django.db import router

            database = router.db_for_write(model) or "default"
            self._database(database)
            source: dict[str, Any] = {
                "name": spec.pop("name", f"{model._meta.label}.{column}"),
                "database": database,
                "table": table,
                "column": column,
            }
            lookups = spec.pop("filter", None)
            if lookups:
                source["where"] = compile_lookups(model, database, lookups, self.field)
            unknown = set(spec) - _REFERENCE_OPTIONS
            if unknown:
                raise ValueError(f"{self.field}: unknown options {sorted(unknown)}")
            source.update(_plain(spec))
            self.stores[store]["references"].append(source)

    def _check_nesting(self) -> None:
        """Refuse a store inside another: each would list the other's objects as its own orphans."""
        self.field = "STORAGES"
        specs = sorted(self.specs.items(), key=lambda item: item[1].identity())
        for i, (outer, a) in enumerate(specs):
            for inner, b in specs[i + 1 :]:
                (url_a, end_a), (url_b, end_b) = a.identity(), b.identity()
                if end_a == end_b and url_b.startswith(url_a):
                    raise ValueError(
                        f"storage {inner!r} ({b.url}) lies inside storage {outer!r} ({a.url}); "
                        "reclaim would take its files for orphans of the outer store"
                    )

    def _collections(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, spec in (self.options.get("collections") or {}).items():
            self.field = f"RECLAIM['collections'][{name!r}]"
            spec = dict(spec)
            model, database, table = collection_table(spec.pop("model", ""), self.field)
            self._database(database)
            label = model._meta.label
            collection: dict[str, Any] = {"database": database, "table": table}
            age = spec.pop("age_field", None)
            if age is None:
                raise ValueError(f"{self.field}: 'age_field' is required (a date or datetime field)")
            collection["age_column"] = model_column(label, age, self.field)[2]
            lookups = spec.pop("filter", None)
            if lookups:
                collection["where"] = compile_lookups(model, database, lookups, self.field)
            references = []
            for ref in spec.pop("references", []):
                ref = dict(ref)
                if "model" in ref:
                    _m, ref_table, ref_column = model_column(
                        ref.pop("model"), ref.pop("field", ""), self.field
                    )
                    ref.update({"table": ref_table, "column": ref_column})
                references.append(_plain(ref))
            if references:
                collection["references"] = references
            unknown = set(spec) - _COLLECTION_OPTIONS
            if unknown:
                raise ValueError(f"{self.field}: unknown options {sorted(unknown)}")
            collection.update(_plain(spec))
            out[name] = collection
        return out


def _quote(database: str, column: str) -> str:
    from django.db import connections

    return str(connections[database].ops.quote_name(column))


def _plain(value: Any) -> Any:
    """Settings values as TOML data: durations as text, paths as strings."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _escape(value: Any) -> Any:
    """Double every ``$``: values from Django (a password with ``$$``) are literal, never ``${VAR}``."""
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value.replace("$", "$$") if isinstance(value, str) else value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("file not found (RECLAIM['config'])", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from None


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, tables merged key by key; reference lists added, never replaced."""
    out = dict(base)
    for key, value in override.items():
        if key == "references" and isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = [*out[key], *value]
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
