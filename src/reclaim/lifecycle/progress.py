"""Progress of the long steps: what a step has done, of how much, how fast, and how long is left.

A lifecycle step (listing a store for a scan or a check, quarantining its
candidates, purging, restoring objects or rows, collecting a collection's
rows) asks its :class:`Progress` for a :class:`Step` and reports through it::

    step = progress.step("quarantine", store.name, total=len(candidates))
    step.batch(len(batch))   # where work goes in batches: the batch counts once it is over
    step.advance()           # one more item done (thread-safe: moves run in a pool)
    step.done()              # the step is over: what it did is its total

The steps never print. A :class:`Reporter` keeps the numbers of every step
(a :class:`Snapshot`: phase, store or collection, done, total, rate and time
left, from a monotonic clock) and shows them to its views: the CLI's bar on
a terminal, :class:`LogLines` (one plain log line every ``interval`` seconds)
elsewhere, and a *sink*, a callable given a small JSON-ready dict at most
every ``sink_interval`` seconds (what the lease heartbeat can carry to a
dashboard). :data:`NO_PROGRESS` does nothing and costs nothing.

Totals are known where they can be: a quarantine's candidates (counted by its
scan), the entries a purge found due, the entries or rows a restore selected,
the candidate rows a collection's ``max_fraction`` guard counted. A listing's
total is an *estimate*: the number of objects the store listed in the last
run that recorded one (:func:`last_listing`), shown with a ``~``; once the
listing goes past it the total is unknown again. When a step is over, its
total is what it did.

The ``progress`` parameters of the API also take the older callback
``(store, objects listed so far)``; :func:`as_progress` adapts it (it hears of
listings only, as before).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from reclaim.errors import ReclaimError

if TYPE_CHECKING:
    from reclaim.catalog import Catalog

__all__ = [
    "NO_PROGRESS",
    "NULL_STEP",
    "PROGRESS_LOGGER",
    "LogLines",
    "Progress",
    "ProgressCallback",
    "ProgressLike",
    "Reporter",
    "Snapshot",
    "Step",
    "View",
    "as_progress",
    "last_listing",
    "size_of",
    "tee",
]

Clock = Callable[[], float]
ProgressCallback = Callable[[str, int], None]
"""The older progress callback: ``(store, objects listed so far)``."""

#: the logger of :class:`LogLines` (the CLI shows its INFO records unless progress is off)
PROGRESS_LOGGER: Final = "reclaim.progress"
#: phases whose steps the older callback hears of: listings
_LISTINGS: Final = frozenset({"scan"})


class Step(Protocol):
    """The handle of one running step."""

    def advance(self, n: int = 1) -> None:
        """``n`` more items are done."""

    def batch(self, n: int) -> None:
        """The next ``n`` items are being worked on: the batch before counts in full now.

        ``advance`` within a batch counts its items one by one (never past the
        batch's end), so a batch of slow moves shows progress while it runs.
        """

    def update(self, done: int) -> None:
        """``done`` items are done in all (never goes back)."""

    def done(self) -> None:
        """The step is over (calling it again does nothing)."""


@runtime_checkable
class Progress(Protocol):
    """What a lifecycle step reports to."""

    def step(
        self,
        phase: str,
        subject: str,
        total: int | None = None,
        *,
        kind: str = "store",
        unit: str = "objects",
        estimated: bool = False,
    ) -> Step:
        """Start a step: ``phase`` (scan, quarantine, ...) of ``subject`` (a store, or with
        ``kind="collection"`` a collection), ``total`` items if known (``estimated``: a guess,
        such as the last run's listing), counted in ``unit`` (the word after the numbers)."""
        ...


ProgressLike = Progress | ProgressCallback | None
"""What the API's ``progress`` parameters take."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The numbers of one step at one instant."""

    id: int
    """The step's serial number in its reporter."""
    phase: str
    subject: str
    kind: str
    unit: str
    done: int
    total: int | None
    """Items the step expects in all (``None``: unknown)."""
    elapsed: float
    """Seconds since the step started (monotonic clock)."""
    estimated: bool = False
    finished: bool = False

    @property
    def fraction(self) -> float | None:
        """Share done (0..1), ``None`` without a total."""
        if self.total is None:
            return None
        return 1.0 if self.total == 0 else min(1.0, self.done / self.total)

    @property
    def rate(self) -> float | None:
        """Items per second since the step started, ``None`` before there is one."""
        if self.elapsed <= 0 or self.done <= 0:
            return None
        return self.done / self.elapsed

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate: 0 once finished, ``None`` without a total or a rate."""
        if self.finished:
            return 0.0
        rate = self.rate
        if self.total is None or rate is None:
            return None
        return max(0, self.total - self.done) / rate

    def to_dict(self) -> dict[str, Any]:
        """A small JSON-ready dict (for a heartbeat or a dashboard)."""
        rate, eta = self.rate, self.eta
        return {
            "phase": self.phase,
            self.kind: self.subject,
            "unit": self.unit,
            "done": self.done,
            "total": self.total,
            "estimated": self.estimated,
            "rate": None if rate is None else round(rate, 1),
            "eta_seconds": None if eta is None else round(eta, 1),
            "elapsed_seconds": round(self.elapsed, 1),
            "finished": self.finished,
        }

    def figures(self) -> str:
        """``250,000/1,000,000 listed (25%), 41,200/s, about 18 s left``; once over, with the time taken."""
        total = "" if self.total is None else f"/{'~' if self.estimated else ''}{self.total:,}"
        text = f"{self.done:,}{total} {self.unit}"
        fraction = self.fraction
        if fraction is not None and not self.finished:
            text += f" ({fraction:.0%})"
        if self.finished:
            text += f" in {_duration(self.elapsed)}"
        rate = self.rate
        if rate is not None:
            text += f", {_rate(rate)}"
        eta = self.eta
        if eta is not None and not self.finished:
            text += f", about {_duration(eta)} left"
        return text

    def describe(self) -> str:
        """``scan blobs: 250,000/1,000,000 listed (25%), 41,200/s, about 18 s left``."""
        return f"{self.phase} {self.subject}: {self.figures()}"


def _rate(rate: float) -> str:
    return f"{rate:,.0f}/s" if rate >= 10 else f"{rate:.1f}/s"


def _duration(seconds: float) -> str:
    if seconds < 0.1:
        return "<0.1 s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes} min {secs} s" if minutes < 10 and secs else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    return f"{hours} h {rest // 60} min"


class View(Protocol):
    """Shows snapshots: once when a step starts, as it goes (at most every refresh), once finished."""

    def show(self, snapshot: Snapshot) -> None:
        """Show ``snapshot`` (``snapshot.finished`` for a step's last one)."""


class _NullStep:
    __slots__ = ()

    def advance(self, n: int = 1) -> None:
        return None

    def batch(self, n: int) -> None:
        return None

    def update(self, done: int) -> None:
        return None

    def done(self) -> None:
        return None


NULL_STEP: Final[Step] = _NullStep()
"""A step that reports nowhere."""


class _NoProgress:
    """Reports nowhere."""

    def step(
        self,
        phase: str,
        subject: str,
        total: int | None = None,
        *,
        kind: str = "store",
        unit: str = "objects",
        estimated: bool = False,
    ) -> Step:
        return NULL_STEP


NO_PROGRESS: Final[Progress] = _NoProgress()


class _ReporterStep:
    """One step of a :class:`Reporter`: counts under a lock (moves run in threads)."""

    def __init__(self, reporter: Reporter, serial: int, fields: dict[str, Any], started: float) -> None:
        self._reporter = reporter
        self._serial = serial
        self._fields = fields
        self._started = started
        self._lock = threading.Lock()
        self._done = 0
        self._batch_end: int | None = None
        self._finished = False

    def snapshot(self, now: float) -> Snapshot:
        total: int | None = self._fields["total"]
        estimated: bool = self._fields["estimated"]
        if self._finished:
            total, estimated = self._done, False
        elif estimated and total is not None and self._done > total:
            total, estimated = None, False  # the store grew past the last listing
        return Snapshot(
            id=self._serial,
            phase=self._fields["phase"],
            subject=self._fields["subject"],
            kind=self._fields["kind"],
            unit=self._fields["unit"],
            done=self._done,
            total=total,
            elapsed=max(0.0, now - self._started),
            estimated=estimated,
            finished=self._finished,
        )

    def advance(self, n: int = 1) -> None:
        with self._lock:
            if self._finished or n <= 0:
                return
            done = self._done + n
            if self._batch_end is not None:
                done = min(done, self._batch_end)
            if done == self._done:
                return
            self._done = done
        self._reporter._changed(self)

    def batch(self, n: int) -> None:
        with self._lock:
            if self._finished:
                return
            if self._batch_end is not None:
                self._done = max(self._done, self._batch_end)
            start = self._done if self._batch_end is None else self._batch_end
            self._batch_end = start + max(0, n)
        self._reporter._changed(self)

    def update(self, done: int) -> None:
        with self._lock:
            if self._finished or done <= self._done:
                return
            self._done = done
        self._reporter._changed(self)

    def done(self) -> None:
        with self._lock:
            if self._finished:
                return
            if self._batch_end is not None:
                self._done = max(self._done, self._batch_end)
            self._finished = True
        self._reporter._changed(self, force=True)


class Reporter:
    """Keeps the numbers of every step and shows them to ``views`` and, throttled, to ``sink``.

    ``refresh`` is the least time between two updates the views see of a
    running step (its first and last snapshots always reach them);
    ``sink`` gets :meth:`Snapshot.to_dict` at most every ``sink_interval``
    seconds, and the last one on :meth:`close`. A view or sink that raises is
    logged and dropped: progress never stops the work.
    """

    def __init__(
        self,
        views: Sequence[View] = (),
        *,
        sink: Callable[[dict[str, Any]], None] | None = None,
        sink_interval: float = 10.0,
        refresh: float = 0.1,
        clock: Clock = time.monotonic,
    ) -> None:
        self._views = list(views)
        self._sink = sink
        self._sink_interval = sink_interval
        self._refresh = refresh
        self._clock = clock
        self._lock = threading.RLock()
        self._serial = 0
        self._shown: dict[int, float] = {}
        self._sunk_at: float | None = None
        # the newest snapshot the sink has not had: made a document only when it is sent, since
        # most advances (one per object moved) fall between two sends
        self._unsunk: Snapshot | None = None
        self._latest: Snapshot | None = None

    def step(
        self,
        phase: str,
        subject: str,
        total: int | None = None,
        *,
        kind: str = "store",
        unit: str = "objects",
        estimated: bool = False,
    ) -> Step:
        """Start a step (see :class:`Progress`)."""
        with self._lock:
            self._serial += 1
            fields = {
                "phase": phase,
                "subject": subject,
                "kind": kind,
                "unit": unit,
                "total": None if total is None else max(0, int(total)),
                "estimated": estimated and total is not None,
            }
            step = _ReporterStep(self, self._serial, fields, self._clock())
        self._changed(step, force=True)
        return step

    def latest(self) -> dict[str, Any] | None:
        """The newest snapshot of any step as a JSON-ready dict (``None`` before the first step)."""
        with self._lock:
            return None if self._latest is None else self._latest.to_dict()

    def close(self) -> None:
        """Give the sink the last snapshot it has not had yet."""
        with self._lock:
            if self._sink is not None and self._unsunk is not None:
                self._call_sink(self._unsunk.to_dict())
                self._unsunk = None

    def _changed(self, step: _ReporterStep, *, force: bool = False) -> None:
        with self._lock:
            now = self._clock()
            snapshot = step.snapshot(now)
            self._latest = snapshot
            last = self._shown.get(snapshot.id)
            if force or last is None or now - last >= self._refresh:
                self._shown[snapshot.id] = now
                if snapshot.finished:
                    del self._shown[snapshot.id]
                for view in list(self._views):
                    try:
                        view.show(snapshot)
                    except Exception:
                        logging.getLogger(__name__).warning("a progress view failed", exc_info=True)
                        self._views.remove(view)
            if self._sink is not None:
                if self._sunk_at is None or now - self._sunk_at >= self._sink_interval:
                    self._sunk_at = now
                    self._unsunk = None
                    self._call_sink(snapshot.to_dict())
                else:
                    self._unsunk = snapshot

    def _call_sink(self, document: dict[str, Any]) -> None:
        assert self._sink is not None
        try:
            self._sink(document)
        except Exception:
            # ignoring this is safe: a heartbeat without progress still keeps the lease
            logging.getLogger(__name__).warning("the progress sink failed", exc_info=True)
            self._sink = None


class LogLines:
    """Shows each step as a plain log line every ``interval`` seconds and once when it is over.

    For cron, systemd and Kubernetes, where a bar has no terminal to draw on.
    Records go to ``logger`` (default ``reclaim.progress``) at INFO. A step
    that did nothing logs nothing.
    """

    def __init__(self, *, interval: float = 30.0, logger: logging.Logger | None = None) -> None:
        self._interval = interval
        self._logger = logger or logging.getLogger(PROGRESS_LOGGER)
        self._logged: dict[int, float] = {}

    def show(self, snapshot: Snapshot) -> None:
        """Log ``snapshot`` if ``interval`` passed since the step's last line, or it is the last one."""
        if snapshot.finished:
            self._logged.pop(snapshot.id, None)
            if snapshot.done:
                self._logger.info("%s", snapshot.describe())
            return
        last = self._logged.setdefault(snapshot.id, 0.0)
        if snapshot.done and snapshot.elapsed - last >= self._interval:
            self._logged[snapshot.id] = snapshot.elapsed
            self._logger.info("%s", snapshot.describe())


class _CallbackStep:
    """A listing step of the older callback ``(store, listed so far)``."""

    def __init__(self, callback: ProgressCallback, store: str) -> None:
        self._callback = callback
        self._store = store
        self._done = 0
        self._lock = threading.Lock()

    def advance(self, n: int = 1) -> None:
        self.update(self._done + n)

    def batch(self, n: int) -> None:
        return None

    def update(self, done: int) -> None:
        with self._lock:
            if done <= self._done:
                return
            self._done = done
        self._callback(self._store, done)

    def done(self) -> None:
        self._callback(self._store, self._done)


class _Callback:
    """Adapts the older callback to :class:`Progress`: it hears of listings only, as before."""

    def __init__(self, callback: ProgressCallback) -> None:
        self._callback = callback

    def step(
        self,
        phase: str,
        subject: str,
        total: int | None = None,
        *,
        kind: str = "store",
        unit: str = "objects",
        estimated: bool = False,
    ) -> Step:
        if phase not in _LISTINGS or kind != "store":
            return NULL_STEP
        return _CallbackStep(self._callback, subject)


class _TeeStep:
    """One step reported to several progresses."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self._steps = steps

    def advance(self, n: int = 1) -> None:
        for step in self._steps:
            step.advance(n)

    def batch(self, n: int) -> None:
        for step in self._steps:
            step.batch(n)

    def update(self, done: int) -> None:
        for step in self._steps:
            step.update(done)

    def done(self) -> None:
        for step in self._steps:
            step.done()


class _Tee:
    """Reports every step to each of several progresses (the operator's display and the heartbeat)."""

    def __init__(self, progresses: Sequence[Progress]) -> None:
        self._progresses = progresses

    def step(
        self,
        phase: str,
        subject: str,
        total: int | None = None,
        *,
        kind: str = "store",
        unit: str = "objects",
        estimated: bool = False,
    ) -> Step:
        return _TeeStep(
            [
                p.step(phase, subject, total, kind=kind, unit=unit, estimated=estimated)
                for p in self._progresses
            ]
        )


def tee(*progresses: ProgressLike) -> Progress:
    """One progress that reports to each of ``progresses`` (``None`` ones left out)."""
    found = [as_progress(p) for p in progresses if p is not None]
    if not found:
        return NO_PROGRESS
    return found[0] if len(found) == 1 else _Tee(found)


def as_progress(progress: ProgressLike) -> Progress:
    """``progress`` as a :class:`Progress`: itself, the older callback adapted, or :data:`NO_PROGRESS`."""
    if progress is None:
        return NO_PROGRESS
    if isinstance(progress, Progress):
        return progress
    return _Callback(progress)


def size_of(items: object) -> int | None:
    """``len(items)`` when it has one (a list of entries), else ``None`` (a stream)."""
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None


#: how many of the latest runs :func:`last_listing` looks through
_RUNS_LOOKED_AT: Final = 50


def last_listing(catalog: Catalog | None, store: str) -> int | None:
    """How many objects ``store`` listed in the latest run that recorded it (``counts["listed"]``).

    The estimated total of the next listing; ``None`` without a catalog or
    such a run. Never raises for a catalog it cannot read.
    """
    if catalog is None:
        return None
    try:
        records = catalog.list_runs(_RUNS_LOOKED_AT)
    except (ReclaimError, ValueError):
        return None  # ignoring this is safe: the listing shows no total, nothing else changes
    for record in records:
        listed = record.counts.get("listed")
        if isinstance(listed, dict):
            count = listed.get(store)
            if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
                return count
    return None
