"""A :class:`reclaim.Config` built from DataJoint's own metadata: connection, stores, headings.

- the database is the schemas' connection (``conn_info`` and
  ``dj.config["database.backend"]``), one ``[databases.datajoint]``;
- each store is a ``dj.config["stores"]`` entry (``file`` and ``s3`` protocols):
  its URL from ``location`` (and ``bucket``/``endpoint``), its listing limited
  (``include``) to the managed subtrees of the given schemas,
  ``{hash_prefix}/{schema}/`` and ``{schema_prefix}/{schema}/``;
- the external attributes (:mod:`reclaim.datajoint.discovery`) become the
  reference sources of every store: the JSON ``path`` of the rows whose
  ``store`` names that store (a row without a store belongs to the default
  store), extracted in SQL, exact for hash-addressed objects (one source, a
  ``UNION ALL`` over every such attribute), a directory with its
  ``.manifest.json`` for schema-addressed ones (one source likewise), computed
  by the codec's ``referenced_paths()`` for the rest (a source each);
- the catalog lives in the pipeline's own database: a schema of its own on
  PostgreSQL, a database of its own on MySQL/MariaDB (``gc.catalog_schema``).

Before the configuration is returned, every hash and schema attribute is
checked: a row whose value names no path fails closed
(:class:`~reclaim.datajoint.discovery.UnmappedAttribute`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import sqlalchemy as sa

from reclaim.config import Config
from reclaim.config.model import CatalogConfig, DatabaseConfig, ReferenceConfig, StoreConfig
from reclaim.datajoint.discovery import ExternalAttribute, Section, UnmappedAttribute, discover
from reclaim.errors import ConfigError

__all__ = ["DATABASE", "Pipeline", "build_pipeline"]

DATABASE = "datajoint"
_MANIFEST = ".manifest.json"
_DECODER = "reclaim.datajoint.paths:referenced_keys"


@dataclass(frozen=True)
class Pipeline:
    """The schemas, what was discovered in them, and the configuration that collects them."""

    schemas: tuple[Any, ...]
    attributes: tuple[ExternalAttribute, ...]
    config: Config
    stores: tuple[str, ...]
    """The stores this run collects."""
    backend: str


def _dj_config(schemas: Sequence[Any], dj_config: Any | None) -> Any:
    if dj_config is not None:
        return dj_config
    import datajoint as dj

    return dj.config


def database_url(info: Mapping[str, Any], backend: str) -> str:
    """The SQLAlchemy URL of a DataJoint ``conn_info`` (the password is in it: never print it)."""
    if backend == "postgresql":
        url = sa.URL.create(
            "postgresql+psycopg",
            username=info.get("user"),
            password=info.get("passwd") or None,
            host=info.get("host"),
            port=info.get("port"),
            database=info.get("database_name") or "postgres",
        )
    else:
        url = sa.URL.create(
            "mysql+pymysql",
            username=info.get("user"),
            password=info.get("passwd") or None,
            host=info.get("host"),
            port=info.get("port"),
        )
    return url.render_as_string(hide_password=False)


def store_location(name: str, spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The reclaim store URL and storage options of DataJoint store ``name``."""
    protocol = str(spec.get("protocol", "")).lower()
    location = str(spec.get("location", "")).strip("/")
    if protocol == "file":
        return "file:///" + location + "/", {}
    if protocol == "s3":
        bucket = str(spec["bucket"])
        endpoint = str(spec["endpoint"])
        if "://" not in endpoint:
            endpoint = ("https://" if spec.get("secure", True) else "http://") + endpoint
        options: dict[str, Any] = {"client_kwargs": {"endpoint_url": endpoint}}
        if spec.get("access_key"):
            options["key"] = str(spec["access_key"])
        if spec.get("secret_key"):
            options["secret"] = str(spec["secret_key"])
        return f"s3://{bucket}/{location}/" if location else f"s3://{bucket}/", options
    raise ConfigError(
        f"DataJoint store {name!r} uses protocol {protocol!r}; reclaim.datajoint supports file and s3",
        field=f"stores.{name}.protocol",
    )


def managed_prefixes(spec: Mapping[str, Any], schemas: Sequence[str]) -> list[str]:
    """``{hash_prefix}/{schema}/`` and ``{schema_prefix}/{schema}/`` of each schema: the listing's scope."""
    prefixes = []
    for key, default in (("hash_prefix", "_hash"), ("schema_prefix", "_schema")):
        section = str(spec.get(key) or default).strip("/")
        for schema in schemas:
            prefixes.append(f"{section}/{schema}/" if section else f"{schema}/")
    return sorted(set(prefixes))


class _Sql:
    """The dialect's spelling of JSON fields and quoted names."""

    def __init__(self, backend: str) -> None:
        self.backend = backend

    def name(self, identifier: str) -> str:
        if self.backend == "postgresql":
            return '"' + identifier.replace('"', '""') + '"'
        return "`" + identifier.replace("`", "``") + "`"

    def field(self, column: str, key: str) -> str:
        if self.backend == "postgresql":
            return f"(CAST({column} AS jsonb) ->> '{key}')"
        # JSON null unquotes to the text 'null' on MySQL/MariaDB: spell it as SQL NULL
        extracted = f"JSON_EXTRACT({column}, '$.{key}')"
        return f"(CASE WHEN JSON_TYPE({extracted}) = 'NULL' THEN NULL ELSE JSON_UNQUOTE({extracted}) END)"

    def table(self, attr: ExternalAttribute) -> str:
        return f"{self.name(attr.schema)}.{self.name(attr.table)}"

    def store_condition(self, column: str, store: str, default: bool) -> str:
        value = self.field(column, "store")
        if default:
            return f"COALESCE({value}, '') IN ('{store}', '')"
        return f"{value} = '{store}'"


def _path_query(attr: ExternalAttribute, store: str, default: bool, sql: _Sql) -> str:
    column = sql.name(attr.attribute)
    path = sql.field(column, "path")
    condition = sql.store_condition(column, store, default)
    return f"SELECT {path} AS ref_key FROM {sql.table(attr)} WHERE {column} IS NOT NULL AND {condition}"


def _sources(
    attributes: Sequence[ExternalAttribute], store: str, default: bool, sql: _Sql
) -> list[ReferenceConfig]:
    """The reference sources of ``store``: one per section, each a ``UNION ALL`` of its attributes.

    Every hash attribute's exact ``path`` goes into one source and every
    schema attribute's directory ``path`` into another, so the scan merges two
    ordered streams and the re-check asks two queries per batch, however many
    tables the schemas hold. A ``codec`` attribute keeps a source of its own
    (its codec computes the keys in Python).
    """
    sources: list[ReferenceConfig] = []
    sections: tuple[tuple[Section, Literal["exact", "prefix"]], ...] = (
        ("hash", "exact"),
        ("schema", "prefix"),
    )
    for section, kind in sections:
        members = [a for a in attributes if a.section == section]
        if not members:
            continue
        query = " UNION ALL ".join(_path_query(a, store, default, sql) for a in members)
        sources.append(
            ReferenceConfig(
                name=f"datajoint.{section}[{store}]",
                database=DATABASE,
                query=query,
                kind=kind,
                sidecars=[_MANIFEST] if kind == "prefix" else [],
                allow_empty=True,
            )
        )
    for attr in attributes:
        if attr.section != "codec":
            continue
        column = sql.name(attr.attribute)
        sources.append(
            ReferenceConfig(
                name=f"{attr.label}[{store}]",
                database=DATABASE,
                query=f"SELECT {column} FROM {sql.table(attr)} WHERE {column} IS NOT NULL",
                decoder=_DECODER,
                decoder_options={
                    "codec": attr.codec,
                    "store": store,
                    "default": "true" if default else "false",
                },
                kind="prefix",
                sidecars=[_MANIFEST],
                allow_empty=True,
            )
        )
    return sources


def check_paths(engine: sa.Engine, attributes: Sequence[ExternalAttribute], backend: str) -> None:
    """Fail closed on a hash or schema attribute with a value that names no path."""
    sql = _Sql(backend)
    with engine.connect() as conn:
        for attr in attributes:
            if attr.section == "codec":
                continue  # its codec's referenced_paths() decides, and a failure there fails the source
            column = sql.name(attr.attribute)
            query = (
                f"SELECT COUNT(*) FROM {sql.table(attr)} "
                f"WHERE {column} IS NOT NULL AND {sql.field(column, 'path')} IS NULL"
            )
            try:
                unmapped = conn.execute(sa.text(query)).scalar_one()
            except sa.exc.SQLAlchemyError as exc:
                orig = getattr(exc, "orig", None) or exc
                raise UnmappedAttribute(
                    attr.schema, attr.table, attr.attribute, f"cannot be read: {orig}"
                ) from None
            if unmapped:
                raise UnmappedAttribute(
                    attr.schema, attr.table, attr.attribute, f"{unmapped} rows hold a value with no path"
                )


def refuse_mariadb(connection: Any) -> None:
    """Fail closed on a MariaDB server: DataJoint 2.3.5 cannot write ``<blob@>`` or ``<attach@>`` there.

    MariaDB reports a ``json`` column as ``longtext``, so ``datajoint/heading.py``
    finds ``attr.json`` false from the server's type; it recovers the flag from
    the declared type only when that type, or a codec's ``get_dtype()``, is
    ``json`` itself. ``<hash@>``, ``<object@>`` and ``<npy@>`` resolve to
    ``json`` directly and work; ``<blob@>`` and ``<attach@>`` resolve to
    ``<hash>`` (the chain is followed one level only), keep ``json`` false, and
    ``table.py`` then hands pymysql the encoded dict (``TypeError: dict can not be
    used as parameter``). reclaim refuses the server rather than collect a
    pipeline DataJoint itself cannot fully write.
    """
    version = str(connection.query("SELECT VERSION()").fetchone()[0])
    if "mariadb" in version.lower():
        raise ConfigError(
            f"reclaim.datajoint does not support MariaDB ({version}): DataJoint 2.3.5 stores codec "
            "attributes as longtext there and cannot write <blob@> or <attach@> values; use MySQL "
            "or PostgreSQL",
            field="database.backend",
            value="mysql",
        )


def build_pipeline(
    schemas: Sequence[Any],
    store_name: str | None = None,
    *,
    settings: Mapping[str, Any],
    dj_config: Any | None = None,
    grace: timedelta | None = None,
) -> Pipeline:
    """Discover ``schemas`` and build the configuration that collects ``store_name`` (default: all).

    Raises :class:`ConfigError` for no schemas, an unknown store or protocol,
    and :class:`~reclaim.datajoint.discovery.UnmappedAttribute` for anything
    that cannot be mapped (nothing is collected then).
    """
    if not schemas:
        raise ConfigError("give at least one schema", field="schemas")
    cfg = _dj_config(schemas, dj_config)
    backend = str(cfg["database.backend"])
    stores_spec: dict[str, Any] = dict(cfg["stores"])
    default_store = stores_spec.get("default")
    named = sorted(name for name, spec in stores_spec.items() if isinstance(spec, Mapping))
    if store_name is not None and store_name not in named:
        raise ConfigError(
            f"no DataJoint store {store_name!r} (configured: {', '.join(named) or 'none'})",
            field="store_name",
        )
    selected = [store_name] if store_name is not None else named
    if backend != "postgresql":
        refuse_mariadb(schemas[0].connection)
    attributes = discover(schemas)
    schema_names = [str(s.database) for s in schemas]
    url = database_url(schemas[0].connection.conn_info, backend)
    catalog_schema = str(settings["gc.catalog_schema"])
    if backend == "postgresql":
        catalog = CatalogConfig(url=url, db_schema=catalog_schema)
    else:
        catalog = CatalogConfig(url=url.rstrip("/") + "/" + catalog_schema)
    sql = _Sql(backend)
    stores: dict[str, StoreConfig] = {}
    for name in selected:
        spec = cfg.get_store_spec(name)
        store_url, options = store_location(name, spec)
        stores[name] = StoreConfig(
            url=store_url,
            storage_options=options,
            min_age=timedelta(seconds=float(settings["gc.min_age_seconds"])),
            grace=grace if grace is not None else timedelta(seconds=float(settings["gc.grace_seconds"])),
            mode=settings["gc.mode"],
            trash_prefix=str(settings["gc.trash_prefix"]),
            max_fraction=float(settings["gc.max_fraction"]),
            include=managed_prefixes(spec, schema_names),
            references=_sources(attributes, name, name == default_store, sql),
        )
    config = Config(catalog=catalog, databases={DATABASE: DatabaseConfig(url=url)}, stores=stores)
    engine = sa.create_engine(url)
    try:
        check_paths(engine, attributes, backend)
    finally:
        engine.dispose()
    return Pipeline(tuple(schemas), tuple(attributes), config, tuple(selected), backend)
