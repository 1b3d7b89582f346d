"""The catalog: reclaim's own tables, their migrations, the audit log, the object journal and the lease.

The catalog lives in a database of its own or beside an application's tables
(under a PostgreSQL schema or a table prefix), on SQLite, PostgreSQL or
MariaDB/MySQL::

    catalog = open_catalog(config.catalog)
    catalog.upgrade()                       # what 'reclaim init' does
    catalog.require_current()               # what every other command does first
    run_id = catalog.start_run("purge", options, dry_run=False)
    ...
    catalog.finish_run(run_id, "succeeded", counts)

    with Leases(catalog).keep("alice", run_id=run_id) as lease:
        journal = Journal(catalog).fenced(lease)   # every write checks the lease's token
        lease.check()                       # before every side effect
        entry = journal.record_intent("blobs", key, mode="move", ...)
        ...                                 # move the object to the trash
        journal.transition(entry, State.QUARANTINED, run_id=run_id, due_at=due)

        # many objects: up to 500 intents, or compare-and-sets, per transaction
        recorded = journal.record_intents("blobs", [Intent(key), ...], mode="mark", run_id=run_id)
        entries = [entry for entry in recorded if entry is not None]   # None: the key was active already
        journal.transition_many(entries, State.QUARANTINED, run_id=run_id, due_at=due)

Read-only ``scan`` and ``check`` leave their reports as observations
(:func:`record_scan`, :func:`record_check`, :func:`latest_observation`).

``fence``, ``journal``, ``lease``, ``observations`` and ``sightings`` are public modules too
(listed in ``__all__``).
"""

from reclaim.catalog import archive, browse, fence, journal, lease, links, observations, released, sightings
from reclaim.catalog._entry import CorruptRow
from reclaim.catalog.archive import (
    RESTORABLE,
    ArchivedRow,
    NewRow,
    Releaser,
    RowArchive,
    RowState,
    RowSummary,
    pk_text,
)
from reclaim.catalog.catalog import MIGRATIONS, Catalog, open_catalog
from reclaim.catalog.fence import Fence, TokenFence
from reclaim.catalog.journal import (
    ACTIVE,
    IN_FLIGHT,
    TERMINAL,
    TRANSITIONS,
    Entry,
    Intent,
    Journal,
    JournalSummary,
    State,
)
from reclaim.catalog.lease import DEFAULT_TTL, Lease, LeaseCheck, LeaseInfo, Leases
from reclaim.catalog.links import ObjectLink, ObjectLinks
from reclaim.catalog.observations import Observation, latest_observation, record_check, record_scan
from reclaim.catalog.released import ReleasedKey
from reclaim.catalog.runs import RunRecord, RunStatus
from reclaim.catalog.sightings import Sightings
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
    "ACTIVE",
    "DEFAULT_TTL",
    "IN_FLIGHT",
    "KEY_LENGTH",
    "LEASE_NAME",
    "MIGRATIONS",
    "RESTORABLE",
    "TERMINAL",
    "TRANSITIONS",
    "ArchivedRow",
    "Catalog",
    "CatalogTables",
    "CorruptRow",
    "Entry",
    "Fence",
    "Intent",
    "Journal",
    "JournalSummary",
    "Lease",
    "LeaseCheck",
    "LeaseInfo",
    "Leases",
    "NewRow",
    "ObjectKey",
    "ObjectLink",
    "ObjectLinks",
    "Observation",
    "ReleasedKey",
    "Releaser",
    "RowArchive",
    "RowState",
    "RowSummary",
    "RunRecord",
    "RunStatus",
    "Sightings",
    "State",
    "TokenFence",
    "UTCDateTime",
    "archive",
    "browse",
    "catalog_tables",
    "fence",
    "journal",
    "latest_observation",
    "lease",
    "links",
    "observations",
    "open_catalog",
    "pk_text",
    "record_check",
    "record_scan",
    "released",
    "sha256_hex",
    "sightings",
]
