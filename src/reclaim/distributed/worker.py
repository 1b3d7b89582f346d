"""One range of one store, worked by a worker: the body of the Celery task, free of Celery.

A :class:`RangeTask` is what the coordinator sends (JSON only: the config by
path, or its TOML text, never resolved secrets); :func:`run_range` is what a
worker does with it, in one of three phases:

- ``purge``: settle the range's in-flight entries (a retried task finishes
  what its killed first attempt left), then purge the range's due entries,
  re-checked against every reference source (the purge of the lifecycle,
  with the single-process purge's bucket check and ``lifecycle`` argument
  for ``purge = "lifecycle"``);
- ``scan``: scan the range read-only (the store's ``max_fraction`` is the
  coordinator's to check, over the whole store);
- ``quarantine``: settle the range's in-flight entries, check a ``versioned``
  store's bucket as the single-process quarantine does, scan the range with
  the coordinator's ``scan_start`` (one age threshold for the whole store),
  refuse if its candidates exceed the range's share of the store's
  ``max_fraction`` budget, then quarantine them.

Every journal write goes through a :class:`~reclaim.catalog.fence.TokenFence`
holding the coordinator's lease token and fence, and every side effect on the
store is preceded by ``fence.check()`` (the lifecycle's lease checks): once
the coordinator's lease changed hands or expired, the worker changes nothing
more and raises :class:`~reclaim.errors.LeaseLost`.

Idempotent on retry: a range is only ever worked by its own task (ranges are
disjoint, and a redelivered task never runs beside its first attempt, see
:mod:`reclaim.distributed.app`), so the in-flight entries of the range are the
first attempt's, and settling them first is what ``recover`` does at the start
of any run. Work the first attempt finished stays done: quarantined objects
are moved, hidden under their delete marker (``versioned``) or journaled
already, purged ones gone. The first attempt's
report died with it, so the retry reads what it did from the journal (the
range's entries this run changed since the phase began) and reports it with
its own: the run record's counts are those of a run nobody killed. What the
retry's recovery settled is reported apart (``retried``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

from reclaim.catalog import Entry, Journal, Sightings, State
from reclaim.catalog.fence import TokenFence
from reclaim.config import Config, StoreConfig, load_config, parse_config
from reclaim.config.jsonable import to_jsonable
from reclaim.distributed.results import sum_purges
from reclaim.errors import ConfigError, UnsafeToProceed
from reclaim.lifecycle import (
    PurgeResult,
    Tally,
    open_journal,
    plan_purge,
    plan_quarantine,
    recover_store,
    scan_store,
)
from reclaim.lifecycle.unreferenced import Watch
from reclaim.lifecycle.versioned import require_purgeable, require_quarantinable
from reclaim.stores import default_mode
from reclaim.stores.partitioned import KeyRange

__all__ = ["PHASES", "ConfigSpec", "Phase", "RangeTask", "run_range"]

Phase = Literal["purge", "scan", "quarantine"]
PHASES: Final = ("purge", "scan", "quarantine")


@dataclass(frozen=True)
class ConfigSpec:
    """How a worker finds the run's config: a path every worker can read, or the TOML text itself.

    The text is sent as written, ``${VAR}`` placeholders and all: secrets are
    resolved by each worker from its own environment, never put on the broker.
    """

    path: str | None = None
    toml: str | None = None

    def __post_init__(self) -> None:
        if self.path is None and self.toml is None:
            raise ConfigError("a distributed run needs the config's path or its text")

    @classmethod
    def of(cls, config: Config | str | Path, *, inline: bool = False) -> ConfigSpec:
        """The spec of ``config`` (a path, or a config loaded from one); ``inline``: send the text."""
        path = config.source_path if isinstance(config, Config) else str(config)
        if path is None:
            raise ConfigError(
                "a distributed run sends its workers the config's path (or text): load it from a file"
            )
        absolute = str(Path(path).resolve())
        if inline:
            return cls(path=absolute, toml=Path(absolute).read_text(encoding="utf-8"))
        return cls(path=absolute)

    def load(self) -> Config:
        """The config, validated here (on the worker)."""
        if self.toml is not None:
            return parse_config(self.toml, path=self.path)
        assert self.path is not None
        return load_config(self.path)


@dataclass(frozen=True)
class RangeTask:
    """One phase of one key range of one store, for the run ``run_id`` whose lease is ``token``/``fence``."""

    phase: Phase
    store: str
    first: str | None
    end_before: str | None
    config: ConfigSpec
    run_id: int | None = None
    token: str | None = None
    fence: int = 0
    index: int = 0
    """The range's position in the store (ranges are in key order)."""
    options: dict[str, Any] = field(default_factory=dict)
    """``scan_start`` and ``phase_start`` (ISO times), ``budget`` (most candidates allowed), ``show``,
    ``due_before``, ``quarantined_before``, ``grace`` (seconds): what the phase needs of the run."""

    @property
    def key_range(self) -> KeyRange:
        """The keys of this task."""
        return KeyRange(self.first, self.end_before)

    def describe(self) -> str:
        """``store 'blobs', range 2 ['m', end)``."""
        return f"store {self.store!r}, range {self.index} {self.key_range.describe()}"

    def to_message(self) -> dict[str, Any]:
        """JSON for the broker."""
        return asdict(self)

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> RangeTask:
        """The task a message describes; a message that is not one is a :class:`ConfigError`."""
        try:
            body = dict(message)
            body["config"] = ConfigSpec(**body["config"])
            task = cls(**body)
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"not a reclaim range task: {exc}") from None
        if task.phase not in PHASES:
            raise ConfigError(f"unknown phase {task.phase!r} of a range task (expected one of {PHASES})")
        return task


def run_range(task: RangeTask, *, config: Config | None = None) -> dict[str, Any]:
    """Work one range (see the module docstring); return its results as JSON.

    ``config`` skips loading it again (an in-process call). Raises
    :class:`~reclaim.errors.LeaseLost` once the coordinator's lease is not the
    task's any more, :class:`~reclaim.errors.UnsafeToProceed` when the range's
    candidates exceed its budget (nothing of the range moved), and whatever the
    scan, the purge or the quarantine raise.
    """
    loaded = config if config is not None else task.config.load()
    key_range = task.key_range
    with open_journal(loaded) as (session, catalog, plain):
        if loaded.stores.get(task.store) is None:
            raise ConfigError(
                f"the workers' config has no store {task.store!r}", field=f"stores.{task.store}"
            )
        policy = loaded.stores[task.store]
        store = session.store(task.store)
        sources = session.sources(task.store)
        out: dict[str, Any] = {"store": task.store, "index": task.index, "phase": task.phase}
        scan_start = _moment(task.options.get("scan_start"))
        if task.phase == "scan":
            scan = scan_store(
                store,
                sources,
                action=policy.action,
                min_age=policy.min_age,
                max_fraction=policy.max_fraction,
                trash_prefix=policy.trash_prefix,
                exclude=policy.exclude,
                show=int(task.options.get("show", 0)),
                scan_start=scan_start,
                key_range=key_range,
                released=session.released(task.store),
                # age = "unreferenced": the clock read, never written (the guard's, a dry run's, a scan's)
                watch=_watch(policy, catalog.sightings, task, scan_start, fence=None),
            )
            out["scan"] = to_jsonable(scan)
            return out
        if task.run_id is None or not task.token:
            raise ConfigError(f"{task.describe()}: a {task.phase} task needs the run and its lease token")
        fence = TokenFence(
            catalog, token=task.token, fence=task.fence, holder=f"run {task.run_id}'s coordinator"
        )
        fence.check()  # a task delivered after its coordinator lost the lease does nothing at all
        journal = plain.fenced(fence)
        grace = policy.grace if "grace" not in task.options else _seconds(task.options["grace"])
        recovered = recover_store(
            store,
            journal,
            grace=grace,
            run_id=task.run_id,
            check_lease=fence.check,
            trash_prefix=policy.trash_prefix,
            key_range=key_range,
        )
        if recovered.total or recovered.refused.count:
            out["retried"] = to_jsonable(recovered)
        since = _moment(task.options.get("phase_start"))
        if task.phase == "purge":
            # the single-process purge's check and arguments (``purge = "lifecycle"``)
            require_purgeable(store, purge=policy.purge, grace=policy.grace)
            plan = plan_purge(
                store,
                sources,
                journal,
                trash_prefix=policy.trash_prefix,
                now=_moment(task.options.get("due_before")),
                quarantined_before=_moment(task.options.get("quarantined_before")),
                key_range=key_range,
                lifecycle=policy.purge == "lifecycle",
            )
            # what a killed first attempt did in this range (its report died with it), recovery included
            purged = _purged_before(plain, task, since) if since is not None else PurgeResult(task.store)
            result = plan.execute(journal, run_id=task.run_id, check_lease=fence.check)
            out["purged"] = to_jsonable(sum_purges(task.store, [purged, result]))
            return out
        mode = policy.mode or default_mode(store)
        # the single-process quarantine's check (``mode = "versioned"``), before the range is listed
        require_quarantinable(store, mode=mode, action=policy.action, purge=policy.purge, grace=grace)
        # age = "unreferenced": the range's sightings recorded (fenced), the clock finished by the
        # coordinator once every range of the store was scanned
        watch = _watch(policy, catalog.sightings, task, scan_start, fence=fence)
        plan_q = plan_quarantine(
            store,
            sources,
            action=policy.action,
            mode=mode,
            min_age=policy.min_age,
            grace=grace,
            max_fraction=1.0,  # the store's max_fraction is the coordinator's guard (see budget)
            trash_prefix=policy.trash_prefix,
            exclude=policy.exclude,
            show=int(task.options.get("show", 0)),
            key_range=key_range,
            scan_start=scan_start,
            released=session.released(task.store),
            watch=watch,
        )
        earlier_keys: list[str] = []
        earlier = _quarantined_before(plain, task, since, earlier_keys) if since is not None else Tally()
        if earlier_keys and watch is not None:
            watch.forget(earlier_keys)  # collected by the first attempt: a restored one starts again
        if earlier.count and mode != "mark":
            # moved to the trash (or hidden under a delete marker) by the first attempt: listed and
            # found candidates then, not now
            _add(plan_q.scan.listed, earlier)
            _add(plan_q.scan.candidates, earlier)
        out["scan"] = to_jsonable(plan_q.scan)
        budget = task.options.get("budget")
        if policy.action != "collect":
            plan_q.discard()
            return out
        if budget is not None and plan_q.scan.candidates.count > int(budget):
            plan_q.discard()
            raise UnsafeToProceed(
                f"{task.describe()}: {plan_q.scan.candidates.count:,} candidates, more than the "
                f"{int(budget):,} this range may take of the store's max_fraction "
                f"{policy.max_fraction:.1%} (candidates appeared since the store was counted); "
                "nothing of this range was moved",
                store=task.store,
            )
        # strays = "report": a quarantined key's own release is used up here (fenced, as the journal);
        # a directory's release is the coordinator's to forget once every range was scanned (another
        # range may not have scanned the keys under it yet), so its directories are sent back
        archive = catalog.archive.fenced(fence)
        directories: set[str] = set()

        def consumed(keys: Sequence[str]) -> None:
            archive.consume_released(task.store, keys, directories=False)
            directories.update(archive.released_directories(task.store, keys))

        if earlier_keys and policy.strays == "report":
            consumed(earlier_keys)  # a killed first attempt's quarantined keys
        done = plan_q.execute(journal, run_id=task.run_id, check_lease=fence.check, on_quarantined=consumed)
        if directories:
            out["released_directories"] = sorted(directories)
        if earlier.count:
            _add(done.quarantined, earlier)
            if mode == "mark":
                # a marked object stays listed: the first attempt's entries are found active again
                done.already_active -= min(done.already_active, earlier.count)
        out["quarantined"] = to_jsonable(done)
        return out


class RangeWatch(Watch):
    """The clock of ``age = "unreferenced"`` for one range of a store: records, never finishes.

    A range's scan is not a complete scan of the store: finishing the clock
    there would forget what the other ranges have not recorded yet. The
    coordinator finishes it once every range of the store was scanned
    (:func:`reclaim.distributed.coordinator.run`), as the single process
    does after its scan.
    """

    def finish(self) -> None:
        """Nothing to do here: the store's clock is the coordinator's to finish."""
        self.finished = True


def _watch(
    policy: StoreConfig,
    sightings: Sightings,
    task: RangeTask,
    now: datetime | None,
    *,
    fence: TokenFence | None,
) -> Watch | None:
    """The range's clock (``age = "unreferenced"``): recording and fenced with ``fence``, else read only."""
    if policy.age != "unreferenced":
        return None
    moment = now if now is not None else datetime.now(UTC)
    if fence is None:
        return Watch(sightings, "store", task.store, moment, policy.min_age)
    return RangeWatch(
        sightings.fenced(fence),
        "store",
        task.store,
        moment,
        policy.min_age,
        run_id=task.run_id,
        check_lease=fence.check,
    )


def _changed(
    journal: Journal, task: RangeTask, states: tuple[State, ...], since: datetime
) -> Iterator[Entry]:
    """The range's entries in ``states`` that this run's phase changed last (since ``since``), by id."""
    assert task.run_id is not None
    key_range = task.key_range
    after = 0
    while batch := journal.changed_by(task.store, task.run_id, states, since=since, after_id=after):
        after = batch[-1].id
        yield from (entry for entry in batch if entry.key in key_range)


def _purged_before(journal: Journal, task: RangeTask, since: datetime) -> PurgeResult:
    """A first attempt's purge of this range, as the journal shows it: what the retry adds to its own."""
    done = PurgeResult(task.store)
    for entry in _changed(journal, task, (State.PURGED, State.RESTORED), since):
        done.due += 1
        if entry.state is State.PURGED:
            done.purged.add(entry.size)
        elif entry.note == "referenced at purge":
            done.restored += 1
        else:
            done.changed += 1
    return done


def _quarantined_before(journal: Journal, task: RangeTask, since: datetime, keys: list[str]) -> Tally:
    """A first attempt's quarantine of this range (confirmed by it, or by the retry's recovery).

    Its keys are appended to ``keys``.
    """
    done = Tally()
    for entry in _changed(journal, task, (State.QUARANTINED,), since):
        done.add(entry.size)
        keys.append(entry.key)
    return done


def _add(total: Tally, part: Tally) -> None:
    total.count += part.count
    total.bytes = None if total.bytes is None or part.bytes is None else total.bytes + part.bytes


def _moment(value: object) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def _seconds(value: object) -> timedelta:
    return timedelta(seconds=float(str(value)))
