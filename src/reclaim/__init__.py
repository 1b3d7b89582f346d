"""reclaim: safe garbage collection for blob storage referenced by relational databases.

The public API takes a :class:`Config` (or the path of a ``reclaim.toml``) and
returns typed results; see :mod:`reclaim.api`.
"""

from reclaim.api import (
    CheckReport,
    DemoResult,
    InitResult,
    LifecycleReport,
    ScanReport,
    StatusReport,
    UnknownItem,
    check,
    collect,
    demo,
    ensure,
    init,
    lock,
    purge,
    quarantine,
    recover,
    restore,
    runs,
    scan,
    status,
)
from reclaim.config import Config, load_config, parse_config
from reclaim.errors import (
    CatalogError,
    ConfigError,
    LeaseLost,
    LockHeld,
    ReclaimError,
    SourceError,
    StoreError,
    UnorderedSource,
    UnsafeToProceed,
)
from reclaim.lifecycle import Ensured

__version__ = "0.1.0"

__all__ = [
    "CatalogError",
    "CheckReport",
    "Config",
    "ConfigError",
    "DemoResult",
    "Ensured",
    "InitResult",
    "LeaseLost",
    "LifecycleReport",
    "LockHeld",
    "ReclaimError",
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
    "runs",
    "scan",
    "status",
]
