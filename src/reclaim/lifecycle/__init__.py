"""The lifecycle steps: scan, check, quarantine, purge, restore, recover, ensure (plan, then execute)."""

from reclaim.lifecycle.check import (
    Dangling,
    JournalCheck,
    SourceCheck,
    StoreCheck,
    check_journal,
    check_store,
)
from reclaim.lifecycle.ensure import Ensured, ensure_key
from reclaim.lifecycle.purge import PurgePlan, PurgeResult, plan_purge
from reclaim.lifecycle.quarantine import QuarantinePlan, QuarantineResult, plan_quarantine
from reclaim.lifecycle.recover import RecoverResult, recover_entry, recover_store
from reclaim.lifecycle.restore import RestoreResult, finish_restore, restore_entries, restore_purged
from reclaim.lifecycle.scan import Classified, SourceReport, Status, StoreScan, Tally, classify, scan_store

__all__ = [
    "Classified",
    "Dangling",
    "Ensured",
    "JournalCheck",
    "PurgePlan",
    "PurgeResult",
    "QuarantinePlan",
    "QuarantineResult",
    "RecoverResult",
    "RestoreResult",
    "SourceCheck",
    "SourceReport",
    "Status",
    "StoreCheck",
    "StoreScan",
    "Tally",
    "check_journal",
    "check_store",
    "classify",
    "ensure_key",
    "finish_restore",
    "plan_purge",
    "plan_quarantine",
    "recover_entry",
    "recover_store",
    "restore_entries",
    "restore_purged",
    "scan_store",
]
