"""The commented ``reclaim.toml`` that ``reclaim init`` writes."""

from __future__ import annotations

__all__ = ["CONFIG_TEMPLATE"]

CONFIG_TEMPLATE = """\
# reclaim.toml: what reclaim may collect, and what it must keep.
# Reference: see the README's "Configuration reference". Durations: 90m, 36h, 7d, 2w.
# Secrets: write ${ENV_VAR}; the value is read from the environment and masked
# in every message, report and log.

[catalog]
# reclaim's own tables (audit log, object journal, row archive, lease).
# Default: a SQLite file beside this config. To share your application's
# database, give its URL and a schema (PostgreSQL) or a table prefix:
# url = "postgresql+psycopg://gc:${PGPASSWORD}@db.example.org/archive"
# schema = "reclaim"
# table_prefix = "reclaim_"

# Databases that hold references, by name. Relative paths in this file (SQLite
# files, local store directories) are relative to this file's directory.
[databases.app]
url = "sqlite:///app.sqlite"
# url = "postgresql+psycopg://gc:${PGPASSWORD}@db.example.org/archive"
# url = "mysql+pymysql://gc:${MYSQL_PASSWORD}@db.example.org/archive"

# A store: one storage location and the sources that say what it must keep.
[stores.blobs]
url = "file:///srv/blobs"            # or s3://bucket/prefix/ (pip install 'reclaim[s3]')
# storage_options = { anon = false } # passed to fsspec
min_age = "7d"       # only objects older than this (at scan start) can be candidates
grace = "7d"         # how long quarantined objects wait before purge
# mode = "move"      # move: to trash_prefix (default for local dirs); mark: journal only (object stores);
#                    # versioned: S3 delete markers, on a bucket whose versioning is Enabled
# purge = "delete"   # versioned mode: or "lifecycle" (the bucket's noncurrent-version expiry purges)
trash_prefix = "_trash/"
exclude = []         # globs of keys never collected, e.g. ["uploads/tmp/*"]
max_fraction = 0.5   # refuse to quarantine when candidates exceed this share of the store
action = "collect"   # or "report": list candidates, never touch them
# strays = "report"  # objects no row collection released: report them, never touch them

# Each reference source yields keys this store must keep.
[[stores.blobs.references]]
database = "app"
table = "assets"
column = "blob_key"
# kind = "prefix"                 # the value names a directory: keep every key under it
# sidecars = [".manifest.json"]   # keep these suffixed keys too
# strip_prefix = "s3://bucket/"   # map a stored value to a key
# add_prefix = "blobs/"
# where = "deleted_at IS NULL"
# dangling = "ignore"             # check: this source's missing objects are expected

# A field inside a JSON column (DataJoint-style {"path": ..., "store": ...}):
# [[stores.blobs.references]]
# database = "app"
# table = "recording"
# column = "file"
# json_path = "path"
# json_filter = { store = "main" }

# Any SQL query returning one column:
# [[stores.blobs.references]]
# database = "app"
# query = "SELECT thumbnail FROM images WHERE thumbnail <> ''"

# A row collection: rows that become garbage themselves. A row is a candidate
# when no row references it (foreign keys are found by reflection), its
# age_column is older than min_age, and `where` holds. Deleted rows are
# archived as JSON and can be restored ('reclaim restore --collection') until
# their retention passes; while archived, what they reference is kept.
# [collections.uploads]
# database = "app"
# table = "uploads"
# age_column = "created"
# min_age = "7d"
# retention = "30d"
# where = "finished = false"
# action = "collect"                 # or "report": list candidates, never touch them
# references = "ignore"              # with action = "report": report rows in use too
#
# More references beside the foreign keys (a column, or SQL returning values):
# [[collections.uploads.references]]
# table = "pending_jobs"
# column = "upload_id"
"""
