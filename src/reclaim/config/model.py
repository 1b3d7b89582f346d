"""The configuration as typed data, validated with pydantic.

One TOML file describes the catalog, the databases, the stores and the
reference sources of each store. Validation errors are turned into
:class:`~reclaim.errors.ConfigError` by :mod:`reclaim.config.loader`, naming the
file, the dotted field and the bad value.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_serializer,
    field_validator,
    model_validator,
)

from reclaim.config.durations import format_duration, parse_duration
from reclaim.config.secrets import mask_options, mask_url
from reclaim.config.sql import check_query, check_where

__all__ = [
    "CatalogConfig",
    "CollectionConfig",
    "CollectionReferenceConfig",
    "Config",
    "DashboardConfig",
    "DatabaseConfig",
    "Duration",
    "ReferenceConfig",
    "StoreConfig",
]

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]

MaskedUrl = Annotated[str, PlainSerializer(mask_url, return_type=str)]
"""A URL whose dumps (``model_dump``, ``model_dump_json``) and repr show no credentials."""

_DIALECTS = {"postgresql", "mysql", "mariadb", "sqlite"}

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
#: URL schemes whose stores can quarantine S3-natively (``mode = "versioned"``)
_VERSIONED_SCHEMES = frozenset({"s3", "s3a"})


def _identifier(value: str | None, what: str) -> str | None:
    if value is not None and not _IDENTIFIER.match(value):
        raise ValueError(f"{value!r} is not a valid {what} name (letters, digits, _ and $)")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def __repr_args__(self) -> Any:
        # repr() and str() of any part of the configuration mask URLs and storage credentials
        for name, value in super().__repr_args__():
            if name == "url" and isinstance(value, str):
                yield name, mask_url(value)
            elif name == "storage_options":
                yield name, mask_options(value)
            elif name == "token" and value is not None:
                yield name, "***"
            else:
                yield name, value


def _database_url(value: str) -> str:
    """Check that ``value`` is a SQLAlchemy URL of a supported dialect whose driver SQLAlchemy knows."""
    shown = repr(mask_url(value))
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme.split("+", 1)[0] not in _DIALECTS:
        raise ValueError(
            f"{shown} is not a supported database URL; use "
            "postgresql+psycopg://, mysql+pymysql://, mariadb+pymysql:// or sqlite:///"
        )
    try:
        url = sa.make_url(value)
        url.get_dialect()  # loads the dialect module, not the driver: no connection is made
    except sa.exc.NoSuchModuleError:
        raise ValueError(
            f"{shown}: SQLAlchemy has no driver {scheme!r}; use "
            "postgresql+psycopg://, mysql+pymysql://, mariadb+pymysql:// or sqlite:///"
        ) from None
    except (sa.exc.ArgumentError, ValueError, TypeError):
        raise ValueError(f"{shown} is not a valid database URL (check the host, port and quoting)") from None
    if url.port is not None and not 0 < url.port < 65536:
        raise ValueError(f"{shown}: port {url.port} is out of range")
    return value


class CatalogConfig(_Model):
    """Where reclaim keeps its own tables."""

    url: MaskedUrl | None = None
    """SQLAlchemy URL; default: a SQLite file beside the config file."""
    db_schema: str | None = Field(default=None, alias="schema")
    """Database schema for the catalog tables (PostgreSQL) when sharing a database."""
    table_prefix: str = "reclaim_"
    lease_ttl: Duration = timedelta(minutes=5)
    """How long the collector lease lives without a heartbeat (renewed every third of it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _database_url(value)

    @field_validator("lease_ttl")
    @classmethod
    def _ttl(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=3):
            raise ValueError("the lease ttl must be at least 3s")
        return value

    @field_validator("table_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
            raise ValueError(f"{value!r} is not a valid table name prefix")
        return value


class DatabaseConfig(_Model):
    """A database that holds reference sources (and possibly the catalog)."""

    url: MaskedUrl
    """SQLAlchemy URL: ``postgresql+psycopg://``, ``mysql+pymysql://``, ``sqlite:///``."""
    connect_timeout: Duration = timedelta(seconds=10)

    @field_validator("url")
    @classmethod
    def _dialect(cls, value: str) -> str:
        return _database_url(value)


class ReferenceConfig(_Model):
    """One reference source: the keys a store must keep.

    Exactly one of ``table`` + ``column`` or ``query`` is given. With
    ``json_path`` the column holds JSON and the key is the field at that path;
    ``json_filter`` keeps only rows whose JSON fields equal the given values.
    """

    name: str | None = None
    database: str
    table: str | None = None
    table_schema: str | None = Field(default=None, alias="schema")
    column: str | None = None
    json_path: str | None = None
    json_filter: dict[str, str] = Field(default_factory=dict)
    where: str | None = None
    """Extra SQL condition on the table's rows (table sources only)."""
    query: str | None = None
    kind: Literal["exact", "prefix"] = "exact"
    """``exact``: the value is one key; ``prefix``: it names a directory covering every key under it."""
    sidecars: list[str] = Field(default_factory=list)
    """Suffixes whose keys are kept too, e.g. ``.manifest.json``."""
    strip_prefix: str | None = None
    """Removed from each value to get the key; values without it are not this store's."""
    add_prefix: str | None = None
    """Put in front of each value (after ``strip_prefix``) to get the key."""
    order: Literal["database", "query", "sort"] = "database"
    """``database``: reclaim orders the stream in SQL with a binary collation;
    ``query``: the query orders its own output (checked on the fly);
    ``sort``: reclaim sorts the stream out of core."""
    allow_empty: bool = False
    """Accept a source that yields no keys while its table has rows."""
    decoder: str | None = None
    """``"package.module:function"``: computes the keys from each stored value in Python.

    For values only application code can read (DataJoint codecs'
    ``referenced_paths()``): ``function(value, **decoder_options)`` gets the
    column's value as text and returns an iterable of keys. The stream is
    sorted out of core; an error in the function fails the source."""
    decoder_options: dict[str, str] = Field(default_factory=dict)
    """Keyword arguments passed to ``decoder`` with every value."""
    dangling: Literal["report", "ignore"] = "report"
    """What ``reclaim check`` does with this source's references whose objects are missing:
    ``report`` them as dangling, or ``ignore`` them (counted as expected: an upload row whose
    object was never uploaded)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("table", "column", "table_schema")
    @classmethod
    def _identifiers(cls, value: str | None) -> str | None:
        return _identifier(value, "table or column")

    @field_validator("where")
    @classmethod
    def _where(cls, value: str | None) -> str | None:
        return None if value is None else check_where(value)

    @field_validator("query")
    @classmethod
    def _query(cls, value: str | None) -> str | None:
        return None if value is None else check_query(value)

    @field_validator("json_path")
    @classmethod
    def _json_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        path = value[2:] if value.startswith("$.") else value
        for part in path.split("."):
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_\-]*$", part):
                raise ValueError(f"{value!r} is not a JSON path like 'path' or '$.a.b'")
        return path

    @field_validator("json_filter")
    @classmethod
    def _json_filter(cls, value: dict[str, str]) -> dict[str, str]:
        for field in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z_][A-Za-z0-9_\-]*)*$", field):
                raise ValueError(f"{field!r} is not a JSON field name")
        return value

    @field_validator("sidecars")
    @classmethod
    def _sidecars(cls, value: list[str]) -> list[str]:
        for suffix in value:
            if not suffix or "/" in suffix:
                raise ValueError(f"sidecar suffix {suffix!r} must be non-empty and contain no '/'")
        return value

    @model_validator(mode="after")
    def _shape(self) -> ReferenceConfig:
        has_table = self.table is not None or self.column is not None
        if has_table and self.query is not None:
            raise ValueError("give either table + column or query, not both")
        if self.query is None and (self.table is None or self.column is None):
            raise ValueError("a reference source needs table + column, or query")
        if self.query is not None and (self.json_path or self.json_filter or self.where):
            raise ValueError("json_path, json_filter and where apply to table sources only")
        if self.json_filter and not self.json_path:
            raise ValueError("json_filter needs json_path")
        if self.order == "query" and self.query is None:
            raise ValueError("order = 'query' applies to query sources only")
        if self.decoder is not None:
            if self.json_path or self.json_filter:
                raise ValueError("decoder reads the whole value: give no json_path or json_filter")
            if not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", self.decoder):
                raise ValueError(f"decoder {self.decoder!r} must look like 'package.module:function'")
        elif self.decoder_options:
            raise ValueError("decoder_options needs decoder")
        return self

    def display_name(self, index: int) -> str:
        """The source's name in reports: ``name`` or one derived from what it reads."""
        if self.name:
            return self.name
        if self.query is not None:
            return f"{self.database}:query{index}"
        label = f"{self.database}.{self.table}.{self.column}"
        if self.decoder:
            label += f"->{self.decoder.rsplit(':', 1)[1]}()"
        if self.json_path:
            label += f"->{self.json_path}"
        for field, expected in sorted(self.json_filter.items()):
            label += f"[{field}={expected}]"
        return label


class StoreConfig(_Model):
    """One storage location and the reference sources that say what it must keep."""

    url: MaskedUrl
    storage_options: dict[str, Any] = Field(default_factory=dict)
    """Passed to fsspec; credential values are masked in repr and dumps."""
    min_age: Duration = timedelta(days=7)
    grace: Duration = timedelta(days=7)
    mode: Literal["move", "mark", "versioned"] | None = None
    """``None`` picks ``move`` where the backend renames atomically, else ``mark``; ``versioned``: S3-native
    quarantine on a bucket whose versioning is enabled (a delete marker hides the object)."""
    purge: Literal["delete", "lifecycle"] = "delete"
    """``versioned`` mode: ``delete`` deletes the quarantined version after grace; ``lifecycle`` leaves it
    to the bucket's noncurrent-version expiry (checked to exist and to outlast grace)."""
    trash_prefix: str = "_trash/"
    exclude: list[str] = Field(default_factory=list)
    """Glob patterns (``fnmatch``, ``*`` crosses ``/``) of keys that are never candidates."""
    max_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    action: Literal["collect", "report"] = "collect"
    strays: Literal["collect", "report"] = "collect"
    """Candidates no row collection released (no row referenced them, live or archived, as far as
    reclaim saw): ``collect`` them like any candidate, or ``report`` them and never touch them."""
    retention: Duration = timedelta(days=30)
    """How long finished journal entries (purged, restored) are kept as history."""
    references: list[ReferenceConfig] = Field(default_factory=list)
    include: list[str] = Field(default_factory=list)
    """Key prefixes (each ending with ``/``) the store is limited to: only keys under them are
    listed, so nothing else is ever a candidate. Empty: the whole store."""
    listing: Literal["list", "inventory"] = "list"
    """Where the listing comes from: the store itself (``list``) or, for an S3 store, its newest
    S3 Inventory report (``inventory``, extra ``reclaim[inventory]``)."""
    inventory: str | None = None
    """The inventory report's folder, ``s3://<dest-bucket>/<prefix>/<source-bucket>/<config-id>/``."""
    max_inventory_age: Duration = timedelta(hours=48)
    """A report taken longer ago than this is refused (fail closed)."""
    full_scan_every: Duration = timedelta(days=7)
    """The incremental cycle (``reclaim run --incremental``) refuses unless a full scan of the store
    succeeded within this period: the full scan is its safety net (strays, unwatched deletes)."""
    age: Literal["own", "unreferenced"] = "own"
    """``own``: an object's age is its last-modified time; ``unreferenced``: it must also have been
    seen unreferenced by every complete scan of real runs for ``min_age`` (the catalog records when
    it was first seen so, and forgets that once it is referenced again)."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the store URL is empty")
        return value

    @field_validator("max_inventory_age")
    @classmethod
    def _max_inventory_age(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("max_inventory_age must be positive")
        return value

    @model_validator(mode="after")
    def _inventory(self) -> StoreConfig:
        if self.listing != "inventory":
            if self.inventory is not None:
                raise ValueError('inventory is set but listing is not "inventory"')
            return self
        url = str(self.url)
        if not url.startswith(("s3://", "s3a://")):
            raise ValueError('listing = "inventory" needs an s3:// store (S3 Inventory reports S3 buckets)')
        if self.inventory is None:
            raise ValueError(
                'listing = "inventory" needs inventory = "s3://<dest-bucket>/<prefix>/<source-bucket>/<config-id>/"'
            )
        bucket = url.split("://", 1)[1].partition("/")[0]
        location = self.inventory
        path = location.split("://", 1)[1].partition("/")[2] if "://" in location else ""
        parts = path.strip("/").split("/")
        if not location.startswith(("s3://", "s3a://")) or len(parts) < 2 or "" in parts:
            raise ValueError(
                f"inventory {location!r} must be s3://<dest-bucket>/<prefix>/<source-bucket>/<config-id>/"
            )
        if parts[-2] != bucket:
            raise ValueError(
                f"inventory {location!r} is not a report of bucket {bucket!r}: "
                f"its path must end in /{bucket}/<config-id>/"
            )
        return self

    @field_validator("full_scan_every")
    @classmethod
    def _full_scan_every(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("full_scan_every must be positive")
        return value

    @field_validator("include")
    @classmethod
    def _include(cls, value: list[str]) -> list[str]:
        for prefix in value:
            parts = prefix.rstrip("/").split("/")
            if not prefix.endswith("/") or prefix.startswith("/") or any(p in {"", ".", ".."} for p in parts):
                raise ValueError(f"{prefix!r} must be a relative prefix ending with '/', like '_hash/ephys/'")
        return value

    @field_serializer("storage_options")
    def _dump_options(self, value: dict[str, Any]) -> Any:
        return mask_options(value)

    @field_validator("trash_prefix")
    @classmethod
    def _trash(cls, value: str) -> str:
        parts = value.rstrip("/").split("/")
        if not value.endswith("/") or value.startswith("/") or any(p in {"", ".", ".."} for p in parts):
            raise ValueError(f"{value!r} must be a relative prefix ending with '/', like '_trash/'")
        return value

    @model_validator(mode="after")
    def _versioned(self) -> StoreConfig:
        if self.purge == "lifecycle" and self.mode != "versioned":
            raise ValueError(
                "purge = 'lifecycle' leaves purging to a versioned bucket's noncurrent-version expiry; "
                "it needs mode = 'versioned'"
            )
        scheme = str(self.url).partition("://")[0].lower() if "://" in str(self.url) else ""
        if self.mode == "versioned" and scheme not in _VERSIONED_SCHEMES:
            raise ValueError(
                f"mode = 'versioned' hides objects behind S3 delete markers; it needs an s3:// store, "
                f"not {scheme + '://' if scheme else 'a local path'}"
            )
        return self

    @model_validator(mode="after")
    def _never_the_trash(self) -> StoreConfig:
        # invariant 8: nothing may point into the trash, and nothing in it is a candidate
        trash = self.trash_prefix
        for index, ref in enumerate(self.references):
            if ref.add_prefix and ref.add_prefix.startswith(trash):
                raise ValueError(
                    f"references[{index}].add_prefix {ref.add_prefix!r} points into the "
                    f"trash prefix {trash!r}"
                )
        for prefix in self.include:
            if prefix.startswith(trash) or trash.startswith(prefix):
                raise ValueError(f"include {prefix!r} overlaps the trash prefix {trash!r}")
        names = [ref.display_name(i) for i, ref in enumerate(self.references)]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"reference source names must be unique; repeated: {sorted(duplicates)}")
        return self


class CollectionReferenceConfig(_Model):
    """A declared reference to a collection's rows, beside the foreign keys found by reflection.

    Either ``table`` + ``column`` (a column of another table, or of the same
    one, holding the referenced value) or ``query`` (SQL returning one column of
    referenced values). The value is compared with the collection's ``to``
    column, by default its single-column primary key.
    """

    table: str | None = None
    table_schema: str | None = Field(default=None, alias="schema")
    column: str | None = None
    query: str | None = None
    to: str | None = None
    """The referenced column of the collection's table (default: its primary key)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("table", "column", "table_schema", "to")
    @classmethod
    def _identifiers(cls, value: str | None) -> str | None:
        return _identifier(value, "table or column")

    @field_validator("query")
    @classmethod
    def _query(cls, value: str | None) -> str | None:
        return None if value is None else check_query(value)

    @model_validator(mode="after")
    def _shape(self) -> CollectionReferenceConfig:
        if self.query is not None and (self.table is not None or self.column is not None):
            raise ValueError("give either table + column or query, not both")
        if self.query is None and (self.table is None or self.column is None):
            raise ValueError("a declared reference needs table + column, or query")
        return self

    def label(self) -> str:
        """How reports and errors name this reference."""
        if self.query is not None:
            return "query"
        table = f"{self.table_schema}.{self.table}" if self.table_schema else str(self.table)
        return f"{table}.{self.column}"


class CollectionConfig(_Model):
    """Rows of one table that become garbage themselves (DESIGN.md, "Row collections").

    A row is a candidate when no row references it (foreign keys found by
    reflection, plus ``references``), its ``age_column`` is older than
    ``min_age``, and the optional ``where`` holds. Collected rows are archived
    as JSON for ``retention`` and can be restored until then.
    """

    database: str
    table: str
    table_schema: str | None = Field(default=None, alias="schema")
    age_column: str
    min_age: Duration = timedelta(days=7)
    where: str | None = None
    """Extra SQL condition on the table's rows."""
    retention: Duration = timedelta(days=30)
    """How long archived rows are kept (and can be restored)."""
    action: Literal["collect", "report"] = "collect"
    references: list[CollectionReferenceConfig] | Literal["ignore"] = Field(default_factory=list)
    """Declared references, beside the reflected foreign keys; or ``"ignore"`` (report-only
    collections): every row old enough that ``where`` selects is a finding, referenced or not."""
    batch_size: int = Field(default=500, ge=1, le=10_000)
    """Rows deleted per transaction."""
    max_fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    """Fail closed when candidates exceed this share of the table (default: no limit)."""
    age: Literal["own", "unreferenced"] = "own"
    """``own``: a row's age is its ``age_column``; ``unreferenced``: the row must also have been
    seen unreferenced (and matching ``where``) by every real run for ``min_age``."""
    size_column: str | None = None
    """A column holding the bytes of the data a row stands for (reported as ``data_bytes``);
    default: the sizes of the objects the store references read from the row."""
    objects: Literal["follow", "keep"] = "keep"
    """``follow``: the objects an archived row references (through the store reference sources
    that read this table) are quarantined with it, restored with it, and purged when its
    retention ends; ``keep``: they stay served, referenced by the archived row, until it expires."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("table", "table_schema", "age_column", "size_column")
    @classmethod
    def _identifiers(cls, value: str | None) -> str | None:
        return _identifier(value, "table or column")

    @field_validator("where")
    @classmethod
    def _where(cls, value: str | None) -> str | None:
        return None if value is None else check_where(value)

    @field_validator("references", mode="before")
    @classmethod
    def _references(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "ignore":
            raise ValueError(
                f"{value!r}: give a list of declared references ([[collections.NAME.references]]) "
                "or 'ignore' (report-only collections)"
            )
        return value

    @model_validator(mode="after")
    def _ignore_only_reports(self) -> CollectionConfig:
        if self.references == "ignore" and self.action != "report":
            raise ValueError(
                "references = 'ignore' applies to report-only collections (action = 'report'): "
                "a collection that deletes rows must never delete a referenced one"
            )
        return self

    @property
    def ignores_references(self) -> bool:
        """Whether every row old enough is a candidate, referenced or not (report rules only)."""
        return self.references == "ignore"

    @property
    def declared(self) -> list[CollectionReferenceConfig]:
        """The declared references (none when references are ignored)."""
        return [] if isinstance(self.references, str) else list(self.references)

    @property
    def qualified_table(self) -> str:
        """``schema.table`` or ``table``: how the archive names the table."""
        return f"{self.table_schema}.{self.table}" if self.table_schema else self.table


def _mask_token(value: str | None) -> str | None:
    return None if value is None else "***"


class DashboardConfig(_Model):
    """``reclaim serve`` and ``reclaim metrics``: who may look, and when to turn red."""

    token: Annotated[str | None, PlainSerializer(_mask_token, return_type=str | None)] = None
    """Bearer token (or basic-auth password) the dashboard asks for; ``${ENV_VAR}`` keeps it out of
    the file. Without one, ``reclaim serve`` binds only to loopback unless told ``--public``."""
    stale_after: Duration = timedelta(days=2)
    """The overview turns red when no cycle (``reclaim run``) has succeeded for this long."""
    prefix: str = ""
    """The path the dashboard is served under behind a reverse proxy (``/reclaim``), or none."""

    @field_validator("token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 8:
            raise ValueError("the dashboard token must be at least 8 characters long")
        return value

    @field_validator("stale_after")
    @classmethod
    def _stale(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("stale_after must be positive")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.rstrip("/")
        if value and (not value.startswith("/") or not re.match(r"^[A-Za-z0-9_./~-]*$", value)):
            raise ValueError(f"{value!r} is not a path prefix like '/reclaim'")
        return value


class Config(_Model):
    """The whole configuration file."""

    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    databases: dict[str, DatabaseConfig] = Field(default_factory=dict)
    stores: dict[str, StoreConfig] = Field(default_factory=dict)
    collections: dict[str, CollectionConfig] = Field(default_factory=dict)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    source_path: str | None = Field(default=None, exclude=True)
    """The file this configuration was read from (not part of the TOML)."""

    @field_validator("databases", "stores", "collections")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"{name!r} is not a valid name (letters, digits, _ . -)")
        return value

    @model_validator(mode="after")
    def _databases_exist(self) -> Config:
        for store_name, store in self.stores.items():
            for index, ref in enumerate(store.references):
                if ref.database not in self.databases:
                    known = ", ".join(sorted(self.databases)) or "none"
                    raise ValueError(
                        f"stores.{store_name}.references[{index}].database: {ref.database!r} "
                        f"is not defined under [databases] (defined: {known})"
                    )
        for name, collection in self.collections.items():
            if collection.database not in self.databases:
                known = ", ".join(sorted(self.databases)) or "none"
                raise ValueError(
                    f"collections.{name}.database: {collection.database!r} "
                    f"is not defined under [databases] (defined: {known})"
                )
        tables = [f"{c.database}:{c.qualified_table}" for c in self.collections.values()]
        repeated = sorted({t for t in tables if tables.count(t) > 1})
        if repeated:
            raise ValueError(f"collections: table {repeated[0]!r} belongs to more than one collection")
        return self

    def store(self, name: str) -> StoreConfig:
        """The store called ``name``; raises ``KeyError`` naming the known stores."""
        try:
            return self.stores[name]
        except KeyError:
            raise KeyError(f"no store {name!r}; configured: {', '.join(sorted(self.stores))}") from None
