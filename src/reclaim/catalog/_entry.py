"""Journal entries as Python sees them: the states, :class:`Entry`, and the row conversions.

Shared by :mod:`reclaim.catalog.journal` (one entry at a time) and
:mod:`reclaim.catalog._batch` (many entries per transaction), so that both
validate, write and read entries exactly alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Literal, TypeVar

from reclaim.catalog.tables import KEY_LENGTH
from reclaim.errors import CatalogError

__all__ = [
    "ACTIVE",
    "IN_FLIGHT",
    "TERMINAL",
    "TRANSITIONS",
    "CorruptRow",
    "Entry",
    "JournalSummary",
    "Mode",
    "State",
    "check_intent",
    "check_key",
    "check_limit",
    "chunks",
    "entry_from_row",
    "entry_written",
    "mtime_columns",
    "replaced",
    "summary_from_rows",
    "utc",
]


class CorruptRow(CatalogError):
    """A catalog row holds a value reclaim never writes (edited by hand, or a bug): it is not acted on."""


class State(StrEnum):
    """Where an object is in its lifecycle; stored as the member's name."""

    QUARANTINING = "QUARANTINING"
    QUARANTINED = "QUARANTINED"
    PURGING = "PURGING"
    PURGED = "PURGED"
    RESTORING = "RESTORING"
    RESTORED = "RESTORED"


#: states in which an entry holds its key (at most one such entry per store and key)
ACTIVE: Final = frozenset({State.QUARANTINING, State.QUARANTINED, State.PURGING, State.RESTORING})
#: states in which a step was started and may not have finished (what recovery looks at)
IN_FLIGHT: Final = frozenset({State.QUARANTINING, State.PURGING, State.RESTORING})
#: states an entry never leaves
TERMINAL: Final = frozenset({State.PURGED, State.RESTORED})
#: every transition the lifecycle allows; anything else is a bug and raises ``ValueError``
TRANSITIONS: Final[dict[State, frozenset[State]]] = {
    State.QUARANTINING: frozenset({State.QUARANTINED, State.RESTORED, State.PURGED}),
    State.QUARANTINED: frozenset({State.PURGING, State.RESTORING}),
    State.PURGING: frozenset({State.PURGED, State.RESTORING, State.QUARANTINED, State.RESTORED}),
    # RESTORING -> PURGED: the trash copy was found gone (deleted by hand) while restoring
    State.RESTORING: frozenset({State.RESTORED, State.QUARANTINED, State.PURGED}),
    State.PURGED: frozenset(),
    State.RESTORED: frozenset(),
}

Mode = Literal["move", "mark", "versioned"]
_MODES: Final = frozenset({"move", "mark", "versioned"})

_T = TypeVar("_T")


@dataclass(frozen=True)
class Entry:
    """One episode of a key in the journal, as read at one moment.

    ``version`` grows by one with every transition; pass the entry back to
    :meth:`Journal.transition` and the change applies only if nobody moved it
    since. ``mtime`` is seconds since the epoch exactly as the store reported it.
    """

    id: int
    store: str
    key: str
    state: State
    version: int
    mode: str
    trash_key: str | None
    size: int | None
    mtime: float | None
    etag: str | None
    run_id: int | None
    updated_run_id: int | None
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None
    note: str | None
    version_id: str | None = None
    """``versioned`` mode: the version of the object its quarantine hid (recorded with the intent)."""
    marker_id: str | None = None
    """``versioned`` mode: the delete marker that hides it (recorded when it is QUARANTINED)."""

    @property
    def active(self) -> bool:
        """Whether this entry still holds its key (not PURGED or RESTORED)."""
        return self.state in ACTIVE


@dataclass(frozen=True)
class JournalSummary:
    """What the journal holds for one store: for ``reclaim status``.

    ``quarantined`` counts QUARANTINED entries and ``quarantined_bytes`` their
    known sizes; ``oldest`` is when the oldest of them was recorded and
    ``next_due`` the earliest end of grace among them; ``in_flight`` counts
    QUARANTINING, PURGING and RESTORING entries; ``purged``/``purged_bytes`` and
    ``restored`` count the history not yet expired.
    """

    store: str
    quarantined: int
    quarantined_bytes: int
    oldest: datetime | None
    next_due: datetime | None
    in_flight: int
    purged: int
    purged_bytes: int
    restored: int


def check_key(key: str) -> None:
    """``ValueError`` unless ``key`` is a non-empty key the journal can hold."""
    if not key:
        raise ValueError("an object key must not be empty")
    if len(key) > KEY_LENGTH:
        raise ValueError(f"key {key[:40]!r}... is {len(key)} characters long; the journal holds {KEY_LENGTH}")


def check_intent(key: str, mode: str, trash_key: str | None) -> None:
    """``ValueError`` for an intent the journal refuses: unknown mode, bad key, move without a trash key."""
    if mode not in _MODES:
        raise ValueError(f"mode must be 'move', 'mark' or 'versioned', not {mode!r}")
    check_key(key)
    if trash_key is not None:
        check_key(trash_key)
    if mode == "move" and trash_key is None:
        raise ValueError(f"key {key!r}: mode 'move' needs a trash key")
    if mode == "versioned" and trash_key is not None:
        raise ValueError(f"key {key!r}: mode 'versioned' moves nothing, so it has no trash key")


def utc(moment: datetime, name: str) -> datetime:
    """``moment`` in UTC; ``ValueError`` when it is naive (its zone would be a guess)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, not naive {moment!r}")
    return moment.astimezone(UTC)


def check_limit(limit: int) -> None:
    """``ValueError`` when a page ``limit`` is below 1."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")


def mtime_columns(mtime: float | None) -> dict[str, Any]:
    """``mtime`` (readable, microseconds) and ``mtime_epoch`` (the exact float) for a store's mtime."""
    if mtime is None:
        return {"mtime": None, "mtime_epoch": None}
    if not math.isfinite(mtime):
        raise ValueError(f"mtime must be a finite number of seconds, not {mtime!r}")
    return {"mtime": datetime.fromtimestamp(mtime, UTC), "mtime_epoch": float(mtime)}


def chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def entry_from_row(row: Mapping[Any, Any]) -> Entry:
    """An :class:`Entry` from a row mapping (or the values just written).

    Raises :class:`CatalogError` naming the row when a value is impossible (an
    unknown state, text where a number belongs: a row edited by hand).
    """
    try:
        entry = _entry(row)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _corrupt(row, exc) from None
    for name in ("store", "key", "mode"):
        if not isinstance(getattr(entry, name), str):
            raise _corrupt(row, ValueError(f"{name} is {getattr(entry, name)!r}, not text"))
    for name in ("trash_key", "etag", "note", "version_id", "marker_id"):
        if getattr(entry, name) is not None and not isinstance(getattr(entry, name), str):
            raise _corrupt(row, ValueError(f"{name} is {getattr(entry, name)!r}, not text"))
    for name in ("created_at", "updated_at", "due_at"):
        value = getattr(entry, name)
        if (value is not None or name != "due_at") and not isinstance(value, datetime):
            raise _corrupt(row, ValueError(f"{name} is {value!r}, not a time"))
    if entry.mtime is not None and not math.isfinite(entry.mtime):
        raise _corrupt(row, ValueError(f"mtime is {entry.mtime!r}"))
    return entry


def _corrupt(row: Mapping[Any, Any], exc: BaseException) -> CorruptRow:
    store, key = row.get("store"), row.get("key")
    return CorruptRow(
        _bad_row(row, exc),
        store=store if isinstance(store, str) else None,
        key=key[:100] if isinstance(key, str) else None,
    )


def _bad_row(row: Mapping[Any, Any], exc: BaseException) -> str:
    ident = row.get("id", "?")
    key = row.get("key")
    shown = f", key {key[:100]!r}" if isinstance(key, str) else ""
    return (
        f"journal entry {ident} (table objects{shown}) holds an impossible value: {exc}; "
        "repair or delete that row (reclaim never acts on it)"
    )


def _entry(row: Mapping[Any, Any]) -> Entry:
    epoch = row["mtime_epoch"]
    stamp: datetime | None = row["mtime"]
    if epoch is not None:
        mtime: float | None = float(epoch)
    else:
        # entries written before migration 0002 kept microseconds only
        mtime = None if stamp is None else stamp.timestamp()
    return Entry(
        id=int(row["id"]),
        store=row["store"],
        key=row["key"],
        state=State(row["state"]),
        version=int(row["version"]),
        mode=row["mode"],
        trash_key=row["trash_key"],
        size=None if row["size"] is None else int(row["size"]),
        mtime=mtime,
        etag=row["etag"],
        run_id=None if row["run_id"] is None else int(row["run_id"]),
        updated_run_id=None if row["updated_run_id"] is None else int(row["updated_run_id"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        due_at=row["due_at"],
        note=row["note"],
        version_id=row["version_id"],
        marker_id=row["marker_id"],
    )


def entry_written(row: Mapping[str, Any]) -> Entry:
    """The :class:`Entry` of values reclaim just wrote (an intent row with its ``id``): not re-validated.

    The values were checked before they were written (:func:`check_intent`,
    :func:`mtime_columns`); a row read back from the database goes through
    :func:`entry_from_row` instead.
    """
    return _built(
        {
            "id": int(row["id"]),
            "store": row["store"],
            "key": row["key"],
            "state": _STATES[row["state"]],
            "version": int(row["version"]),
            "mode": row["mode"],
            "trash_key": row["trash_key"],
            "size": row["size"],
            "mtime": row["mtime_epoch"],
            "etag": row["etag"],
            "run_id": row["run_id"],
            "updated_run_id": row["updated_run_id"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "due_at": row["due_at"],
            "note": row["note"],
            "version_id": row["version_id"],
            "marker_id": row["marker_id"],
        }
    )


def replaced(entry: Entry, changes: Mapping[str, Any], mtime: float | None = None) -> Entry:
    """``entry`` as a transition writing ``changes`` (and ``mtime``, when given) left it."""
    new = object.__new__(Entry)
    fields = new.__dict__
    fields.update(entry.__dict__)
    fields["state"] = _STATES[changes["state"]]
    fields["version"] = changes["version"]
    fields["updated_run_id"] = changes["updated_run_id"]
    fields["updated_at"] = changes["updated_at"]
    if mtime is not None:
        fields["mtime"] = float(mtime)
    for name in ("etag", "due_at", "note", "marker_id"):
        if name in changes:
            fields[name] = changes[name]
    return new


def _built(fields: dict[str, Any]) -> Entry:
    """An :class:`Entry` of ``fields`` (every field, already checked), without the frozen ``__init__``.

    A batch builds one entry per object and step; the generated ``__init__``
    of a frozen dataclass sets each field through ``object.__setattr__``,
    which made building them a visible share of a collection.
    """
    entry = object.__new__(Entry)
    entry.__dict__.update(fields)
    return entry


#: each state by its stored name (and by itself): faster than calling ``State``
_STATES: Final[dict[str, State]] = {state.value: state for state in State}


def summary_from_rows(store: str, rows: Mapping[str, Any]) -> JournalSummary:
    """A :class:`JournalSummary` from one row per state (entries, bytes, oldest, next_due) by state name."""

    def count(state: State) -> int:
        row = rows.get(state.value)
        return 0 if row is None else int(row.entries)

    def size(state: State) -> int:
        row = rows.get(state.value)
        return 0 if row is None or row.bytes is None else int(row.bytes)

    quarantined = rows.get(State.QUARANTINED.value)
    return JournalSummary(
        store=store,
        quarantined=count(State.QUARANTINED),
        quarantined_bytes=size(State.QUARANTINED),
        oldest=None if quarantined is None else quarantined.oldest,
        next_due=None if quarantined is None else quarantined.next_due,
        in_flight=sum(count(state) for state in IN_FLIGHT),
        purged=count(State.PURGED),
        purged_bytes=size(State.PURGED),
        restored=count(State.RESTORED),
    )
