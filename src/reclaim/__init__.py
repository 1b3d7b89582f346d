"""reclaim: safe garbage collection for blob storage referenced by relational databases.

The public API takes a :class:`Config` (or the path of a ``reclaim.toml``) and
returns typed results; see :mod:`reclaim.api`.
"""

from reclaim.api import (
    CheckReport,
    CycleReport,
    InitResult,
    LifecycleReport,
    RowsReport,
    ScanReport,
    StatusReport,
    check,
    collect,
    ensure,
    init,
    lock,
    purge,
    quarantine,
    recover,
    restore,
    restore_rows,
    run,
    runs,
    scan,
    status,
)
from reclaim.config import Config, load_config, parse_config
from reclaim.errors import (
    CatalogError,
    CollectionError,
    ConfigError,
    LeaseLost,
    LockHeld,
    PlanSpent,
    ReclaimError,
    RowConflict,
    SourceError,
    StoreError,
    UnknownItem,
    UnorderedSource,
    UnsafeToProceed,
)
from reclaim.lifecycle import Ensured
from reclaim.sample import DemoResult, demo

__version__ = "0.1.0"

__all__ = [
    "CatalogError",
    "CheckReport",
    "CollectionError",
    "Config",
    "ConfigError",
    "CycleReport",
    "DemoResult",
    "Ensured",
    "InitResult",
    "LeaseLost",
    "LifecycleReport",
    "LockHeld",
    "PlanSpent",
    "ReclaimError",
    "RowConflict",
    "RowsReport",
    "ScanReport",
    "SourceError",
    "StatusReport",
    "StoreError",
    "UnknownItem",
    "UnorderedSource",
    "UnsafeToProceed",
    "__version__",
    "check",
    "collect",
    "demo",
    "ensure",
    "init",
    "load_config",
    "lock",
    "parse_config",
    "purge",
    "quarantine",
    "recover",
    "restore",
    "restore_rows",
    "run",
    "runs",
    "scan",
    "status",
]
