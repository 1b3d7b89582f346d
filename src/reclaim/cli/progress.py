"""Progress on the command line: a bar per step on a terminal, plain log lines elsewhere.

Both go to stderr (the log lines through :mod:`logging`, so ``--log-file``
and ``--log-format json`` apply to them), never to stdout, where ``--json``
writes its document. ``reclaim --no-progress`` (or ``RECLAIM_NO_PROGRESS=1``)
turns both off; ``--progress-interval`` sets how often a log line is written
for a running step (default every 30 s; each step also logs one line when it
is over).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reclaim.lifecycle.progress import PROGRESS_LOGGER, LogLines, Reporter, Snapshot, View

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Bars", "ProgressSettings", "reporting"]

#: the least time between two redraws of a bar
_REDRAW = 0.1


@dataclass
class ProgressSettings:
    """What the global options say about progress."""

    enabled: bool = True
    interval: float = 30.0
    """Seconds between two log lines of a running step (not on a terminal)."""


class Bars:
    """One Rich bar per step: what it is, the bar, done/total, rate and time left."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[figures]}"),
            console=console,
            # stdout carries the results (and --json): the bars never capture it
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._tasks: dict[int, Any] = {}

    def __enter__(self) -> Bars:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def show(self, snapshot: Snapshot) -> None:
        """Draw ``snapshot`` on its step's bar (a step that did nothing leaves no bar behind)."""
        task = self._tasks.get(snapshot.id)
        if task is None:
            if snapshot.finished and not snapshot.done:
                return
            task = self._progress.add_task(
                f"{snapshot.phase} {snapshot.subject}", total=snapshot.total, figures=""
            )
            self._tasks[snapshot.id] = task
        if snapshot.finished:
            del self._tasks[snapshot.id]
            if not snapshot.done:
                self._progress.remove_task(task)
                return
        self._progress.update(task, completed=snapshot.done, total=snapshot.total, figures=snapshot.figures())


@contextmanager
def reporting(settings: ProgressSettings, console: Console) -> Iterator[Reporter | None]:
    """A :class:`Reporter` drawing bars on ``console`` if it is a terminal, logging lines if not.

    ``None`` when progress is off.
    """
    if not settings.enabled:
        yield None
        return
    if not console.is_terminal:
        logging.getLogger(PROGRESS_LOGGER).setLevel(logging.INFO)
        lines: View = LogLines(interval=settings.interval)
        yield Reporter([lines], refresh=min(_REDRAW, settings.interval))
        return
    with Bars(console) as bars:
        yield Reporter([bars], refresh=_REDRAW)
