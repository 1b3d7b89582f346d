"""reclaim for DataJoint 2 pipelines: ``quarantine / purge / restore / status``, discovered from the schemas.

Install with ``pip install 'reclaim[datajoint]'``. The shape is ``dj.gc``'s,
``*schemas`` and ``store_name``, but collection is two-phase::

    import reclaim.datajoint as rdj

    rdj.quarantine(ephys, imaging, store_name="main", dry_run=False)   # now
    rdj.purge(ephys, imaging, store_name="main", dry_run=False)        # after gc.grace_seconds
    rdj.restore("_hash/ephys/ntbkwkogoaeivvblrks3iudwiy")                # undo, any time before
    print(rdj.format_quarantine_stats(rdj.status()))

Every table and attribute is discovered from DataJoint's own headings and
codecs on every call (:mod:`reclaim.datajoint.discovery`), the connection and
stores come from ``dj.config``, the catalog lives in the pipeline's database,
and settings are ``gc.*`` keys of :data:`config`.
"""

from reclaim.datajoint.api import (
    QuarantineStats,
    collect,
    configuration,
    purge,
    quarantine,
    quarantine_stats,
    restore,
    scan,
    status,
)
from reclaim.datajoint.discovery import ExternalAttribute, UnmappedAttribute, discover
from reclaim.datajoint.render import format_quarantine_stats, to_toml
from reclaim.datajoint.settings import config

__all__ = [
    "ExternalAttribute",
    "QuarantineStats",
    "UnmappedAttribute",
    "collect",
    "config",
    "configuration",
    "discover",
    "format_quarantine_stats",
    "purge",
    "quarantine",
    "quarantine_stats",
    "restore",
    "scan",
    "status",
    "to_toml",
]
