"""The Python API: the same verbs as the CLI, taking a config (or its path), returning typed results."""

from reclaim.api.commands import check, scan
from reclaim.api.demo import DemoArchive, DemoResult, build_demo_archive, demo
from reclaim.api.init import InitResult, init
from reclaim.api.reports import CheckReport, ScanReport, to_jsonable
from reclaim.api.session import ConfigLike, Session, resolve_config

__all__ = [
    "CheckReport",
    "ConfigLike",
    "DemoArchive",
    "DemoResult",
    "InitResult",
    "ScanReport",
    "Session",
    "build_demo_archive",
    "check",
    "demo",
    "init",
    "resolve_config",
    "scan",
    "to_jsonable",
]
