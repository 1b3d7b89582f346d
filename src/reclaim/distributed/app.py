"""The Celery side: the app, its one task, and the dispatcher a coordinator sends ranges through.

Workers are plain Celery workers of this app::

    celery -A reclaim.distributed.app worker --concurrency 4 -Q reclaim

The broker is ``RECLAIM_BROKER`` (default ``redis://127.0.0.1:6379/0``), the
result backend ``RECLAIM_RESULT_BACKEND`` (default: the broker), the queue
``RECLAIM_QUEUE`` (default ``reclaim``). The settings are what makes a
killed worker's range safe to run again:

- ``task_acks_late`` and ``task_reject_on_worker_lost``: the message of a
  range is acknowledged when the range is done; a worker process killed
  mid-range (SIGKILL, OOM) makes Celery put it back on the queue, and another
  process runs it again from its journal state (see :mod:`reclaim.distributed.worker`);
- ``worker_prefetch_multiplier = 1``: a worker holds one range at a time, so
  a slow range never holds others back;
- ``task_time_limit`` (``RECLAIM_TASK_TIME_LIMIT``, default 6 h) below the
  Redis ``visibility_timeout`` (twice it): Redis hands an unacknowledged
  message to another worker only after the visibility timeout, by which time
  the first attempt is certainly over (killed by its time limit at the
  latest), so one range never runs twice at once;
- JSON only: a task carries no pickles and no resolved secrets.

A failed range comes back as :class:`RangeFailed`, whose one argument is a
JSON document (the reclaim error's class, message and what it is about), so
that the coordinator raises the same error with the range named in it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from celery import Celery

from reclaim.distributed.worker import RangeTask, run_range
from reclaim.errors import ReclaimError

__all__ = ["TASK_NAME", "CeleryDispatcher", "RangeFailed", "app", "make_app"]

TASK_NAME: Final = "reclaim.distributed.range"
#: seconds between two looks at the results (and at the coordinator's lease) while waiting
_POLL = 0.25


class RangeFailed(Exception):
    """A range task's reclaim error, as JSON (one string argument: it travels through any result backend)."""


def make_app(broker: str | None = None, backend: str | None = None, *, queue: str | None = None) -> Celery:
    """The Celery app of reclaim's range task, with the settings of the module docstring."""
    broker = broker or os.environ.get("RECLAIM_BROKER", "redis://127.0.0.1:6379/0")
    backend = backend or os.environ.get("RECLAIM_RESULT_BACKEND", broker)
    limit = float(os.environ.get("RECLAIM_TASK_TIME_LIMIT", str(6 * 3600)))
    celery = Celery("reclaim", broker=broker, backend=backend)
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=limit,
        broker_transport_options={"visibility_timeout": 2 * limit},
        result_backend_transport_options={"visibility_timeout": 2 * limit},
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=queue or os.environ.get("RECLAIM_QUEUE", "reclaim"),
        task_track_started=True,
        result_expires=7 * 24 * 3600,
        broker_connection_retry_on_startup=True,
    )

    @celery.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def work_range(message: dict[str, Any]) -> dict[str, Any]:
        task = RangeTask.from_message(message)
        try:
            return run_range(task)
        except ReclaimError as exc:
            raise RangeFailed(_error_document(exc, task)) from None

    return celery


def _error_document(exc: ReclaimError, task: RangeTask) -> str:
    return json.dumps(
        {"error": type(exc).__name__, "message": str(exc), "about": exc.about(), "range": task.describe()}
    )


class CeleryDispatcher:
    """Sends range tasks to the workers of ``celery`` and waits for them, checking the lease meanwhile."""

    def __init__(self, celery: Celery | None = None, *, timeout: float | None = None) -> None:
        self.celery = celery if celery is not None else app
        self.timeout = timeout

    def close(self) -> None:
        """Close the app's connections to the result backend, and the app.

        The broker connections stay in kombu's pool, which is one per broker
        URL for the whole process and is reused by the next app of that broker
        (closing it would break that app); it holds them, so they are never
        left to the garbage collector, and they close with the process.
        """
        backend = self.celery.backend
        consumer = getattr(backend, "result_consumer", None)
        if consumer is not None:
            consumer.stop()  # its pub/sub connection is checked out of the pool, not closed by it
        client = getattr(backend, "client", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()
        self.celery.close()

    def describe(self) -> str:
        """``celery (redis://127.0.0.1:6379/0)``, without credentials."""
        from reclaim.config import redact

        return f"celery ({redact(str(self.celery.conf.broker_url))})"

    def map(self, tasks: Sequence[RangeTask], *, check: Callable[[], None]) -> list[dict[str, Any]]:
        """The results of ``tasks``, in order; raises the first range's error, or the coordinator's.

        ``check`` (the coordinator's lease check) runs between two looks at the
        results: a coordinator that lost its lease stops waiting at once (its
        workers are refused by the fence at their next write).
        """
        pending = [self.celery.send_task(TASK_NAME, args=[task.to_message()]) for task in tasks]
        started = time.monotonic()
        try:
            while not all(result.ready() for result in pending):
                check()
                for task, result in zip(tasks, pending, strict=True):
                    if result.ready() and result.failed():
                        raise _range_error(task, result.result)
                if self.timeout is not None and time.monotonic() - started > self.timeout:
                    from reclaim.errors import UnsafeToProceed

                    raise UnsafeToProceed(
                        f"{sum(not r.ready() for r in pending)} of {len(pending)} ranges unfinished after "
                        f"{self.timeout:g} s: are workers running on {self.describe()}?"
                    )
                time.sleep(_POLL)
            check()
            out = []
            for task, result in zip(tasks, pending, strict=True):
                if result.failed():
                    raise _range_error(task, result.result)
                out.append(dict(result.result))
            return out
        except BaseException:
            for result in pending:
                if not result.ready():
                    result.revoke()  # a range not started yet never starts; running ones stop at the fence
            raise
        finally:
            for result in pending:
                if result.ready():
                    result.forget()
                else:
                    # stop listening for it now, while the result consumer is open: left to the
                    # result's __del__ (after close(), where an error's traceback keeps it alive),
                    # the unsubscribe would open a connection to the backend that nobody closes
                    self.celery.backend.remove_pending_result(result)


def _range_error(task: RangeTask, error: object) -> ReclaimError:
    """The reclaim error a failed range raised, rebuilt on the coordinator, or one that says what failed."""
    from reclaim import errors

    if isinstance(error, RangeFailed) and error.args:
        try:
            doc = json.loads(str(error.args[0]))
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            kind = getattr(errors, str(doc.get("error")), None)
            message = f"{doc.get('range')}: {doc.get('message')}"
            about = doc.get("about") or {}
            if kind is errors.LeaseLost or kind is errors.LockHeld:
                return kind(str(about.get("holder", "the coordinator")), message)
            if kind is errors.ConfigError:
                return errors.ConfigError(message)
            if kind is errors.StoreError:
                return errors.StoreError(str(about.get("store", task.store)), message)
            if kind is errors.SourceError or kind is errors.UnorderedSource:
                return errors.SourceError(str(about.get("source", "?")), message)
            return errors.UnsafeToProceed(f"{message} ({doc.get('error')})", store=task.store)
    return errors.UnsafeToProceed(
        f"{task.describe()}: the worker failed: {type(error).__name__}: {error}", store=task.store
    )


app = make_app()
