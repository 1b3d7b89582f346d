"""Django's databases and storages as reclaim databases and stores.

- ``settings.DATABASES[alias]`` becomes a SQLAlchemy URL (PostgreSQL through
  psycopg, MySQL/MariaDB through PyMySQL, SQLite): the credentials are read
  from the settings at the moment the configuration is built, never written
  anywhere, and registered as secrets so no message shows them.
- A storage becomes a store: ``FileSystemStorage`` (and subclasses) a local
  store at its ``location``; django-storages' ``S3Storage`` (and subclasses)
  an S3 store at ``s3://bucket/location/`` with its endpoint, region and
  credentials as s3fs options. Anything else is :class:`UnmappedStorage`:
  reclaim cannot list what it cannot name, and a file field whose objects
  were left out would make its objects look like orphans elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reclaim.config import register_secret

__all__ = ["StoreSpec", "UnmappedDatabase", "UnmappedStorage", "database_url", "store_spec"]

_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "sqlite3": "sqlite",
}

#: OPTIONS of a PostgreSQL database that libpq reads from the URL's query string
_PG_QUERY_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "application_name", "options")


class UnmappedDatabase(ValueError):
    """A database whose ENGINE reclaim has no driver for."""


class UnmappedStorage(ValueError):
    """A storage reclaim cannot map to a store."""


def database_url(alias: str, settings: dict[str, Any]) -> str:
    """The SQLAlchemy URL of ``settings.DATABASES[alias]``; its password is registered as a secret.

    Raises :class:`UnmappedDatabase` for an ENGINE other than Django's
    PostgreSQL, MySQL and SQLite backends (or subclasses named ``….postgresql``
    and so on, such as PostGIS).
    """
    engine = str(settings.get("ENGINE", ""))
    vendor = engine.rsplit(".", 1)[-1]
    if vendor == "postgis":
        vendor = "postgresql"
    driver = _DRIVERS.get(vendor)
    if driver is None:
        raise UnmappedDatabase(f"database {alias!r}: ENGINE {engine!r} is not PostgreSQL, MySQL or SQLite")
    name = settings.get("NAME") or ""
    if driver == "sqlite":
        if not name or str(name) == ":memory:" or str(name).startswith("file:"):
            raise UnmappedDatabase(f"database {alias!r}: an in-memory SQLite database cannot be shared")
        return f"sqlite:///{Path(name).resolve()}"
    password = settings.get("PASSWORD") or None
    if password:
        register_secret(str(password))
    options = settings.get("OPTIONS") or {}
    query: dict[str, str] = {}
    if driver.startswith("postgresql"):
        query = {k: str(v) for k, v in options.items() if k in _PG_QUERY_OPTIONS}
    elif options.get("charset"):
        query["charset"] = str(options["charset"])
    port = settings.get("PORT")
    url = sa.URL.create(
        driver,
        username=settings.get("USER") or None,
        password=password,
        host=settings.get("HOST") or ("127.0.0.1" if driver.startswith("mysql") else None),
        port=int(port) if port else None,
        database=str(name),
        query=query,
    )
    return url.render_as_string(hide_password=False)


@dataclass(frozen=True)
class StoreSpec:
    """Where a storage keeps its files: a store URL and its fsspec options."""

    url: str
    options: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> tuple[str, str]:
        """What makes two storages one store: the URL and the endpoint (credentials may differ)."""
        endpoint = str(self.options.get("client_kwargs", {}).get("endpoint_url") or "")
        return (self.url.rstrip("/") + "/", endpoint)


def store_spec(storage: Any) -> StoreSpec:
    """The store a storage instance writes to; :class:`UnmappedStorage` if there is none reclaim knows."""
    from django.core.files.storage import FileSystemStorage
    from django.utils.functional import LazyObject

    if isinstance(storage, LazyObject):
        storage._setup()
        storage = storage._wrapped
    if isinstance(storage, FileSystemStorage):
        return StoreSpec(Path(storage.location).resolve().as_uri())
    s3 = _s3_storage_class()
    if s3 is not None and isinstance(storage, s3):
        return _s3_spec(storage)
    kind = f"{type(storage).__module__}.{type(storage).__qualname__}"
    raise UnmappedStorage(
        f"storage {kind} is neither FileSystemStorage nor django-storages' S3Storage "
        "(declare its store in reclaim.toml and map the field with RECLAIM['fields'])"
    )


def _s3_storage_class() -> type | None:
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # pragma: no cover - django-storages is part of the extra
        return None
    return S3Storage


def _s3_spec(storage: Any) -> StoreSpec:
    bucket = storage.bucket_name
    if not bucket:
        raise UnmappedStorage("S3Storage has no bucket_name (AWS_STORAGE_BUCKET_NAME)")
    location = str(storage.location or "").strip("/")
    url = f"s3://{bucket}/{location}/" if location else f"s3://{bucket}/"
    options: dict[str, Any] = {}
    for option, attribute in (("key", "access_key"), ("secret", "secret_key"), ("token", "security_token")):
        value = getattr(storage, attribute, None)
        if value:
            options[option] = str(value)
            if option != "key":
                register_secret(str(value))
    if getattr(storage, "session_profile", None):
        options["profile"] = storage.session_profile
    client: dict[str, Any] = {}
    if storage.endpoint_url:
        client["endpoint_url"] = storage.endpoint_url
    if storage.region_name:
        client["region_name"] = storage.region_name
    if storage.verify is not None:
        client["verify"] = storage.verify
    if not storage.use_ssl:
        client["use_ssl"] = False
    if client:
        options["client_kwargs"] = client
    if storage.addressing_style:
        options["config_kwargs"] = {"s3": {"addressing_style": storage.addressing_style}}
    return StoreSpec(url, options)
