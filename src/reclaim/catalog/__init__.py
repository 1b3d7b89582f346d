"""The catalog: reclaim's own tables, their migrations and the audit log of runs.

The catalog lives in a database of its own or beside an application's tables
(under a PostgreSQL schema or a table prefix), on SQLite, PostgreSQL or
MariaDB/MySQL::

    catalog = open_catalog(config.catalog)
    catalog.upgrade()                       # what 'reclaim init' does
    catalog.require_current()               # what every other command does first
    run_id = catalog.start_run("purge", options, dry_run=False)
    ...
    catalog.finish_run(run_id, "succeeded", counts)
"""

from reclaim.catalog.catalog import MIGRATIONS, Catalog, open_catalog
from reclaim.catalog.runs import RunRecord, RunStatus
from reclaim.catalog.tables import (
    KEY_LENGTH,
    LEASE_NAME,
    CatalogTables,
    ObjectKey,
    UTCDateTime,
    catalog_tables,
    sha256_hex,
)

__all__ = [
    "KEY_LENGTH",
    "LEASE_NAME",
    "MIGRATIONS",
    "Catalog",
    "CatalogTables",
    "ObjectKey",
    "RunRecord",
    "RunStatus",
    "UTCDateTime",
    "catalog_tables",
    "open_catalog",
    "sha256_hex",
]
