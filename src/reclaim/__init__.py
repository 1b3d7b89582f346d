"""reclaim: safe garbage collection for blob storage referenced by relational databases.

The public API takes a :class:`Config` (or the path of a ``reclaim.toml``) and
returns typed results; see :mod:`reclaim.api`.
"""

from reclaim.api import CheckReport, DemoResult, InitResult, ScanReport, check, demo, init, scan
from reclaim.config import Config, load_config, parse_config
from reclaim.errors import (
    CatalogError,
    ConfigError,
    LockHeld,
    ReclaimError,
    SourceError,
    StoreError,
    UnorderedSource,
    UnsafeToProceed,
)

__version__ = "0.1.0"

__all__ = [
    "CatalogError",
    "CheckReport",
    "Config",
    "ConfigError",
    "DemoResult",
    "InitResult",
    "LockHeld",
    "ReclaimError",
    "ScanReport",
    "SourceError",
    "StoreError",
    "UnorderedSource",
    "UnsafeToProceed",
    "__version__",
    "check",
    "demo",
    "init",
    "load_config",
    "parse_config",
    "scan",
]
