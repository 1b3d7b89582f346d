"""The Celery task: one cycle of reclaim, as ``reclaim run`` does it, for Celery Beat.

Found by ``app.autodiscover_tasks()`` once ``reclaim.django`` is installed::

    CELERY_BEAT_SCHEDULE = {
        "reclaim": {"task": "reclaim.django.tasks.run_cycle", "schedule": crontab(minute=0, hour=3)},
    }

The cycle runs under the collector lease (one collector at a time): a task that
finds the lease held returns ``{"status": "locked", ...}`` ("another cycle is
running") instead of failing, so an overlapping beat tick is harmless. Any
other error fails the task with reclaim's message. A worker killed mid-cycle
leaves every item in a defined state; the next cycle recovers it first.
"""

from __future__ import annotations

import json
from typing import Any

from celery import shared_task

from reclaim import api
from reclaim.config import redact
from reclaim.django.conf import reclaim_config
from reclaim.errors import LockHeld

__all__ = ["run_cycle"]


@shared_task(name="reclaim.django.tasks.run_cycle")
def run_cycle(dry_run: bool = False) -> str:
    """Run one cycle; return its report as JSON (``{"status": "ok", "report": {...}}``).

    ``{"status": "locked", "message": "another cycle is running ...", "holder": ...}``
    when another collector holds the lease. Credentials never appear in the result.
    """
    document: dict[str, Any]
    try:
        report = api.run(reclaim_config(), dry_run=dry_run)
    except LockHeld as exc:
        document = {"status": "locked", "message": f"another cycle is running: {exc}", **exc.about()}
    else:
        document = {"status": "ok", "report": report.to_dict()}
    return redact(json.dumps(document, default=str))
