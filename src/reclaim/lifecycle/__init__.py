"""The lifecycle steps: scan and check now; quarantine, purge, restore and recover build on them."""

from reclaim.lifecycle.check import Dangling, SourceCheck, StoreCheck, check_store
from reclaim.lifecycle.scan import Classified, SourceReport, Status, StoreScan, Tally, classify, scan_store

__all__ = [
    "Classified",
    "Dangling",
    "SourceCheck",
    "SourceReport",
    "Status",
    "StoreCheck",
    "StoreScan",
    "Tally",
    "check_store",
    "classify",
    "scan_store",
]
