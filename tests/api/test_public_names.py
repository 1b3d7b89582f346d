"""The public names are a decision: a name added to the package or removed from it fails here."""

from __future__ import annotations

import reclaim
import reclaim.api

RECLAIM = [
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

API = [
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

#: subpackages and modules, which importing the package makes attributes of it
MODULES = {
    "api",
    "catalog",
    "cli",
    "config",
    "dashboard",
    "datajoint",
    "distributed",
    "django",
    "errors",
    "lifecycle",
    "references",
    "rows",
    "sample",
    "stores",
}


def test_reclaim_exports_exactly_the_pinned_names() -> None:
    assert sorted(reclaim.__all__) == sorted(RECLAIM)
    for name in RECLAIM:
        assert hasattr(reclaim, name), name


def test_reclaim_has_no_public_name_outside_all() -> None:
    public = {name for name in dir(reclaim) if not name.startswith("_")} - MODULES
    assert public == set(RECLAIM) - {"__version__"}


def test_api_exports_exactly_the_pinned_names() -> None:
    assert sorted(reclaim.api.__all__) == sorted(API)
    for name in API:
        assert hasattr(reclaim.api, name), name


def test_the_top_level_verbs_are_the_api_verbs() -> None:
    for name in set(RECLAIM) & set(API):
        assert getattr(reclaim, name) is getattr(reclaim.api, name), name
