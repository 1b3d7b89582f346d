"""The Python API: the same verbs as the CLI, taking a config (or its path), returning typed results."""

from reclaim.api.commands import check, scan
from reclaim.api.cycle import CycleReport, RowsReport, restore_rows, run
from reclaim.api.demo import DemoArchive, DemoResult, build_demo_archive, demo
from reclaim.api.init import InitResult, init
from reclaim.api.reports import CheckReport, ScanReport, to_jsonable
from reclaim.api.session import ConfigLike, Session, resolve_config
from reclaim.api.status import CollectionStatus, StatusReport, StoreStatus, status
from reclaim.api.verbs import (
    LifecycleReport,
    UnknownItem,
    collect,
    ensure,
    lock,
    purge,
    quarantine,
    recover,
    restore,
    runs,
)

__all__ = [
    "CheckReport",
    "CollectionStatus",
    "ConfigLike",
    "CycleReport",
    "DemoArchive",
    "DemoResult",
    "InitResult",
    "LifecycleReport",
    "RowsReport",
    "ScanReport",
    "Session",
    "StatusReport",
    "StoreStatus",
    "UnknownItem",
    "build_demo_archive",
    "check",
    "collect",
    "demo",
    "ensure",
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
