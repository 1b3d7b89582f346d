"""Fault points: places where a test can kill the process to prove crash safety.

A test starts a real reclaim process with ``RECLAIM_FAULT=<point>`` (optionally
``<point>:<n>`` to fire on the n-th visit); when the process reaches that
point it sends itself SIGKILL, exactly as an OOM kill or a power cut would end
it. Outside tests the variable is unset and a fault point costs one comparison.

``RECLAIM_FAULT_ONCE=<file>`` makes the kill fire in one process only, the
first to create ``<file>``: a Celery worker's pool process killed mid-range is
replaced by one that inherits the same environment, and the retried range
must run to its end.

``RECLAIM_PAUSE=<point>[:<n>]`` instead stops the process there with SIGSTOP,
as a debugger, a VM migration or a long pause of the machine would: the
lease-fencing tests resume it (SIGCONT) after another collector took over.
The :data:`WINDOW_POINTS` sit between a lease check and the side effect it
guards, the worst instant for such a pause.
"""

from __future__ import annotations

import os
import signal

__all__ = [
    "FOLLOW_POINTS",
    "POINTS",
    "ROW_POINTS",
    "VERSIONED_POINTS",
    "WATCH_POINTS",
    "WINDOW_POINTS",
    "fault",
]

#: every fault point, in the order a run meets them; quarantine, purge and restore work a batch
#: at a time, so their points are met once per batch, except ``quarantine.after-move``: once per
#: object moved (once per batch in ``mark`` mode, where nothing moves), and ``restore.after-move``:
#: once per object
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

#: fault points of ``versioned`` mode only (S3-native quarantine), beside the points above that it
#: meets too: ``quarantine.after-hide`` once per ``DeleteObjects`` request that hid objects,
#: ``purge.after-versions`` once per batch, between deleting the versions and their delete
#: markers, ``restore.after-unhide`` once per ``DeleteObjects`` request that deleted markers
VERSIONED_POINTS = (
    "quarantine.after-hide",
    "purge.after-versions",
    "restore.after-unhide",
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

#: fault points of the age-since-unreferenced clock: once per page a real run's scan records
WATCH_POINTS = ("unreferenced.after-record",)

#: fault points of objects that follow their rows (``objects = "follow"``): after the pending objects
#: of a batch are quarantined, before their links name the entries; after they are linked; after a
#: row's objects are restored, before the row; after an expiring row's objects are purged, before
#: its links are dropped
FOLLOW_POINTS = (
    "follow.after-quarantine",
    "follow.after-link",
    "rows-restore.after-objects",
    "expire.after-purge",
)

#: points between a lease check and the side effect it guards: once per delete request or move
WINDOW_POINTS = (
    "quarantine.checked",
    "purge.checked",
)


def _parse(variable: str) -> tuple[str, int]:
    point, _, nth = os.environ.get(variable, "").partition(":")
    return point, int(nth) if nth.isdigit() else 1


_kill_point, _kill_left = _parse("RECLAIM_FAULT")
_pause_point, _pause_left = _parse("RECLAIM_PAUSE")


def _first_to_fire() -> bool:
    """Whether this process may fire the kill: always, unless ``RECLAIM_FAULT_ONCE`` names a file."""
    marker = os.environ.get("RECLAIM_FAULT_ONCE")
    if not marker:
        return True
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False  # another process fired it already
    return True


def fault(point: str) -> None:
    """SIGKILL (``RECLAIM_FAULT``) or SIGSTOP (``RECLAIM_PAUSE``) this process at ``point``'s n-th visit."""
    global _kill_left, _pause_left
    if point == _kill_point:
        _kill_left -= 1
        if _kill_left <= 0 and _first_to_fire():
            os.kill(os.getpid(), signal.SIGKILL)
    if point == _pause_point:
        _pause_left -= 1
        if _pause_left == 0:
            os.kill(os.getpid(), signal.SIGSTOP)
