"""The journal is checked, not trusted: what a step verifies before it acts on an entry or a key.

The catalog is a database an operator can edit by hand (or a bug can write),
so an entry is only acted on when it is consistent with the store's
configuration. Purge, restore, recover and ``ensure`` call :func:`trusted` on
the entries they read, and ``reclaim check`` reports what it refuses:

- the key must be a key the store and the journal can hold (:func:`key_problem`):
  relative, no empty, ``.`` or ``..`` segments, not inside the trash prefix,
  at most :data:`MAX_KEY` characters and UTF-8 bytes (S3's limit; the
  journal's key column holds as many characters);
- a ``move`` entry's trash key must be exactly ``trash_prefix + key``: purge
  deletes the trash key, so a trash key naming a live object would delete it;
- a ``mark`` entry has no trash key (its object never moved);
- a ``versioned`` entry has no trash key and, while hidden (QUARANTINED,
  PURGING, RESTORING), names the version it hid and the delete marker that
  hides it: restore and purge delete versions by these ids, and nothing else.

A refused entry is left exactly as it is, object and journal row: it is
counted, sampled in the command's report and logged as a warning, never
deleted, moved or settled. Refusing is always safe: keeping an object too
long cannot lose data.

Quarantine applies :func:`key_problem` to candidates (and to the trash key
it would move each to) before recording anything, so one key a backend cannot
hold is reported and skipped instead of stopping every later run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from reclaim.catalog import KEY_LENGTH, Entry, State
from reclaim.stores import validate_key

__all__ = ["MAX_KEY", "Refused", "entry_problem", "key_problem", "trusted"]

log = logging.getLogger(__name__)

#: the longest key (characters, and UTF-8 bytes) reclaim acts on: S3's limit and the journal's column
MAX_KEY: Final = min(KEY_LENGTH, 1024)
#: states in which a ``versioned`` entry's object is hidden by a delete marker the entry names
_HIDDEN: Final = frozenset({State.QUARANTINED, State.PURGING, State.RESTORING})
#: samples kept per report
SAMPLES: Final = 10


def key_problem(key: object, trash_prefix: str) -> str | None:
    """Why ``key`` is not a key reclaim may act on in a store with ``trash_prefix``; ``None`` if it is."""
    if not isinstance(key, str):
        return f"the key is {type(key).__name__}, not text"
    try:
        validate_key(key)
    except ValueError as exc:
        return str(exc)
    if len(key) > MAX_KEY:
        return f"the key is {len(key):,} characters long; at most {MAX_KEY:,} are supported"
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY:
        return f"the key is {size:,} bytes long in UTF-8; at most {MAX_KEY:,} are supported"
    if trash_prefix and key.startswith(trash_prefix):
        return f"the key is inside the trash prefix {trash_prefix!r}"
    return None


def entry_problem(entry: Entry, trash_prefix: str) -> str | None:
    """Why ``entry`` must not be acted on in a store with ``trash_prefix``; ``None`` when it may."""
    problem = key_problem(entry.key, trash_prefix)
    if problem is not None:
        return problem
    if entry.mode == "move":
        expected = trash_prefix + entry.key
        if entry.trash_key != expected:
            return f"move entry with trash key {entry.trash_key!r}, expected {expected!r}"
        size = len(expected.encode("utf-8", "surrogatepass"))
        if len(expected) > MAX_KEY or size > MAX_KEY:
            return f"its trash key is {size:,} bytes long; at most {MAX_KEY:,} are supported"
        return None
    if entry.mode == "mark":
        if entry.trash_key is not None:
            return f"mark entry with a trash key {entry.trash_key!r} (a marked object never moves)"
        return None
    if entry.mode == "versioned":
        if entry.trash_key is not None:
            return f"versioned entry with a trash key {entry.trash_key!r} (a hidden object never moves)"
        if not entry.version_id and entry.state in _HIDDEN:
            return f"{entry.state.value} versioned entry without the version id it hid"
        if entry.marker_id is None and entry.state in _HIDDEN:
            return f"{entry.state.value} versioned entry without its delete marker id"
        if entry.marker_id is not None and entry.marker_id == entry.version_id:
            return "versioned entry whose delete marker is its own version"
        return None
    return f"unknown mode {entry.mode!r}"


@dataclass
class Refused:
    """Entries (or keys) a step refused to act on: how many, and samples of ``key: why``."""

    count: int = 0
    samples: list[str] = field(default_factory=list)

    def add(self, store: str, key: object, why: str, *, doing: str) -> None:
        """Count one refusal and log it as a warning."""
        self.count += 1
        shown = key if isinstance(key, str) and len(key) <= 200 else f"{str(key)[:200]}..."
        if len(self.samples) < SAMPLES:
            self.samples.append(f"{shown}: {why}")
        log.warning("store %r: %s refused key %r: %s; left as it is", store, doing, shown, why)


def trusted(entries: Iterable[Entry], *, trash_prefix: str, refused: Refused, doing: str) -> list[Entry]:
    """The entries of ``entries`` that :func:`entry_problem` accepts; the others are added to ``refused``."""
    kept: list[Entry] = []
    for entry in entries:
        problem = entry_problem(entry, trash_prefix)
        if problem is None:
            kept.append(entry)
        else:
            refused.add(entry.store, entry.key, f"journal entry {entry.id}: {problem}", doing=doing)
    return kept
