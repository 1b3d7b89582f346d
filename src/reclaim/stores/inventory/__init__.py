"""S3 Inventory as the listing of an S3 store (``listing = "inventory"``, extra ``reclaim[inventory]``).

Listing a bucket of hundreds of millions of objects with ``ListObjectsV2``
costs a request per 1,000 keys on every run; S3 Inventory delivers the same
listing daily as a few files. This package reads those reports and hands the
scan an ordinary ordered listing, without ever trusting the snapshot with a
deletion:

- ``_manifest``: the newest complete report (dated folder, ``manifest.json``
  and its ``manifest.checksum``), checked: checksum, source bucket, format,
  schema, age (``max_inventory_age``);
- ``_read``: each data file downloaded, its MD5 checked, parsed with pyarrow
  (CSV gzip with URL-encoded keys, Parquet, ORC), normalized and filtered to
  the store's latest, non-deleted keys;
- ``_sort``: the report sorted out of core (sorted runs on disk, merged with a
  heap), so memory stays flat;
- ``_store``: :class:`InventoryStore`, a
  :class:`~reclaim.stores.base.SnapshotStore`: its pages verify every
  unreferenced key against the bucket before it can be a candidate, and the
  report's date caps the age threshold; everything that touches objects goes
  to the live S3 store.

pyarrow is imported here and nowhere else in reclaim.
"""

from reclaim.stores.inventory._manifest import Report
from reclaim.stores.inventory._sort import RUN_ROWS
from reclaim.stores.inventory._store import DEFAULT_MAX_AGE, InventoryPage, InventoryStore

__all__ = ["DEFAULT_MAX_AGE", "RUN_ROWS", "InventoryPage", "InventoryStore", "Report"]
