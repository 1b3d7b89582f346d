"""Fault points: places where a test can kill the process to prove crash safety.

A test starts a real reclaim process with ``RECLAIM_FAULT=<point>`` (optionally
``<point>:<n>`` to fire on the n-th visit); when the process reaches that
point it sends itself SIGKILL, exactly as an OOM kill or a power cut would end
it. Outside tests the variable is unset and a fault point costs one comparison.
"""

from __future__ import annotations

import os
import signal

__all__ = ["POINTS", "ROW_POINTS", "fault"]

#: every fault point, in the order a run meets them; quarantine and purge work a batch at a time,
#: so their points are met once per batch, except ``quarantine.after-move``: once per object
#: moved (once per batch in ``mark`` mode, where nothing moves); restore's once per object
POINTS = (
    "quarantine.after-intent",
    "quarantine.after-recheck",
    "quarantine.after-move",
    "quarantine.after-confirm",
    "purge.after-claim",
    "purge.after-recheck",
    "purge.after-delete",
    "purge.after-confirm",
    "restore.after-claim",
    "restore.after-move",
    "restore.after-confirm",
)

#: fault points of row collections and row restores
ROW_POINTS = (
    "rows.after-select",
    "rows.after-archive",
    "rows.after-delete",
    "rows.after-confirm",
    "rows-restore.after-claim",
    "rows-restore.after-insert",
)

_spec = os.environ.get("RECLAIM_FAULT", "")
_point, _, _nth = _spec.partition(":")
_remaining = int(_nth) if _nth else 1


def fault(point: str) -> None:
    """Kill this process with SIGKILL if ``RECLAIM_FAULT`` names ``point`` (on its n-th visit)."""
    global _remaining
    if point != _point:
        return
    _remaining -= 1
    if _remaining <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
