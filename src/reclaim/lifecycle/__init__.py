"""The lifecycle: a :class:`Collector` frames a run; its steps are plans, previewed or executed once."""

from reclaim.lifecycle.check import (
    Dangling,
    JournalCheck,
    SourceCheck,
    StoreCheck,
    check_journal,
    check_store,
)
from reclaim.lifecycle.collector import Collector, Plan, close_dead_run, open_journal
from reclaim.lifecycle.ensure import Ensured, ensure_key
from reclaim.lifecycle.incremental import IncrementalOutcome, IncrementalScan, IncrementalStep
from reclaim.lifecycle.purge import PurgePlan, PurgeResult, plan_purge
from reclaim.lifecycle.quarantine import QuarantinePlan, QuarantineResult, plan_quarantine
from reclaim.lifecycle.recover import RecoverResult, recover_entry, recover_store
from reclaim.lifecycle.restore import RestoreResult, finish_restore, restore_entries, restore_purged
from reclaim.lifecycle.rows import CollectionResult, CollectionScan, RowRecovery
from reclaim.lifecycle.scan import Classified, SourceReport, Status, StoreScan, Tally, classify, scan_store
from reclaim.lifecycle.session import ConfigLike, Session, resolve_config
from reclaim.lifecycle.steps import (
    ExpireOutcome,
    ExpireStep,
    ProgressCallback,
    PurgeStep,
    QuarantineOutcome,
    QuarantineStep,
    RestoreStep,
    RowRestoreOutcome,
    RowRestoreStep,
    RowsOutcome,
    RowsStep,
    require_restore_selection,
    require_row_selection,
)

__all__ = [
    "Classified",
    "CollectionResult",
    "CollectionScan",
    "Collector",
    "ConfigLike",
    "Dangling",
    "Ensured",
    "ExpireOutcome",
    "ExpireStep",
    "IncrementalOutcome",
    "IncrementalScan",
    "IncrementalStep",
    "JournalCheck",
    "Plan",
    "ProgressCallback",
    "PurgePlan",
    "PurgeResult",
    "PurgeStep",
    "QuarantineOutcome",
    "QuarantinePlan",
    "QuarantineResult",
    "QuarantineStep",
    "RecoverResult",
    "RestoreResult",
    "RestoreStep",
    "RowRecovery",
    "RowRestoreOutcome",
    "RowRestoreStep",
    "RowsOutcome",
    "RowsStep",
    "Session",
    "SourceCheck",
    "SourceReport",
    "Status",
    "StoreCheck",
    "StoreScan",
    "Tally",
    "check_journal",
    "check_store",
    "classify",
    "close_dead_run",
    "ensure_key",
    "finish_restore",
    "open_journal",
    "plan_purge",
    "plan_quarantine",
    "recover_entry",
    "recover_store",
    "require_restore_selection",
    "require_row_selection",
    "resolve_config",
    "restore_entries",
    "restore_purged",
    "scan_store",
]
