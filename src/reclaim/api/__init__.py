"""The Python API: the same verbs as the CLI, taking a config (or its path), returning typed results.

By noun: :mod:`~reclaim.api.objects` (quarantine, purge, collect, restore,
recover, ensure), :mod:`~reclaim.api.rows` (restore_rows),
:mod:`~reclaim.api.cycle` (run), :mod:`~reclaim.api.incremental` (install,
uninstall, incremental_status: the incremental mode's triggers),
:mod:`~reclaim.api.inspection` (scan, check, status, runs, lock) and
:mod:`~reclaim.api.setup` (init). Each mutating verb is a plan of the
:class:`~reclaim.lifecycle.Collector`, previewed in a dry run and executed
otherwise.
"""

from reclaim.api.cycle import CycleReport, run
from reclaim.api.incremental import (
    IncrementalStatus,
    StoreIncremental,
    TriggersReport,
    incremental_status,
)
from reclaim.api.inspection import (
    CheckReport,
    CollectionStatus,
    ScanReport,
    StatusReport,
    StoreStatus,
    check,
    lock,
    runs,
    scan,
    status,
)
from reclaim.api.objects import LifecycleReport, collect, ensure, purge, quarantine, recover, restore
from reclaim.api.rows import RowsReport, restore_rows
from reclaim.api.setup import InitResult, init
from reclaim.config.jsonable import to_jsonable
from reclaim.errors import UnknownItem
from reclaim.lifecycle import ConfigLike, Session, resolve_config

__all__ = [
    "CheckReport",
    "CollectionStatus",
    "ConfigLike",
    "CycleReport",
    "IncrementalStatus",
    "InitResult",
    "LifecycleReport",
    "RowsReport",
    "ScanReport",
    "Session",
    "StatusReport",
    "StoreIncremental",
    "StoreStatus",
    "TriggersReport",
    "UnknownItem",
    "check",
    "collect",
    "ensure",
    "incremental_status",
    "init",
    "lock",
    "purge",
    "quarantine",
    "recover",
    "resolve_config",
    "restore",
    "restore_rows",
    "run",
    "runs",
    "scan",
    "status",
    "to_jsonable",
]
