"""What the workers send back, read again and summed into one result per store.

A range task returns JSON (the broker carries nothing else): the results of
its phase as :func:`~reclaim.config.jsonable.to_jsonable` writes them. The
coordinator reads each back into the lifecycle's own types and sums the
ranges of a store, so that the run record holds what the single-process run
would have recorded:

- counts and bytes add up (a ``None`` byte total, not measured, stays ``None``);
- samples are taken in range order, which is key order: the first ``show``
  candidates (and strays) of the store, as one listing would have found them;
- every range reads of each reference source only the references that cover
  a key of the range, and counts as ``rows`` those whose key lies in it, so a
  source's ``rows`` (and the scan's ``references``) add up over the ranges to
  the store's own references; ``foreign`` (values of other stores) is not
  counted by a range; the keys a source ``covers`` are the range's, and add up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any, TypeVar

from reclaim.config import parse_duration
from reclaim.lifecycle import PurgeResult, QuarantineResult, RecoverResult, SourceReport, StoreScan, Tally
from reclaim.lifecycle.trust import SAMPLES, Refused
from reclaim.stores import ObjectInfo

__all__ = [
    "read_purge",
    "read_quarantine",
    "read_recover",
    "read_scan",
    "sum_purges",
    "sum_quarantines",
    "sum_recovers",
    "sum_scans",
]

Document = Mapping[str, Any]


def _tally(doc: Document) -> Tally:
    return Tally(int(doc["count"]), None if doc["bytes"] is None else int(doc["bytes"]))


def _refused(doc: Document) -> Refused:
    return Refused(int(doc["count"]), [str(s) for s in doc["samples"]])


def _add_tally(total: Tally, part: Tally) -> None:
    total.count += part.count
    total.bytes = None if total.bytes is None or part.bytes is None else total.bytes + part.bytes


def _add_refused(total: Refused, part: Refused) -> None:
    total.count += part.count
    total.samples.extend(part.samples[: max(0, SAMPLES - len(total.samples))])


_Result = TypeVar("_Result", PurgeResult, QuarantineResult, RecoverResult)


def _added(total: _Result, parts: Sequence[_Result]) -> _Result:
    """``total`` with every field of ``parts`` added in: counts, tallies, refusals (samples in range order).

    The text fields name what was acted on (the store, the mode) and are
    ``total``'s own. Raises ``TypeError`` for a field of any other type: a
    field nobody said how to add must not be dropped from the run record.
    """
    for part in parts:
        for field in fields(part):
            mine, theirs = getattr(total, field.name), getattr(part, field.name)
            if isinstance(theirs, Tally):
                _add_tally(mine, theirs)
            elif isinstance(theirs, Refused):
                _add_refused(mine, theirs)
            elif isinstance(theirs, int) and not isinstance(theirs, bool):
                setattr(total, field.name, mine + theirs)
            elif not isinstance(theirs, str):
                raise TypeError(f"{type(part).__name__}.{field.name} cannot be added up")
    return total


def read_purge(doc: Document) -> PurgeResult:
    """A :class:`PurgeResult` from its JSON."""
    return PurgeResult(
        store=str(doc["store"]),
        due=int(doc["due"]),
        purged=_tally(doc["purged"]),
        restored=int(doc["restored"]),
        changed=int(doc["changed"]),
        lost_race=int(doc["lost_race"]),
        refused=_refused(doc["refused"]),
    )


def sum_purges(store: str, parts: Sequence[PurgeResult]) -> PurgeResult:
    """The purge of ``store``: its ranges' results added up."""
    return _added(PurgeResult(store), parts)


def read_quarantine(doc: Document) -> QuarantineResult:
    """A :class:`QuarantineResult` from its JSON."""
    return QuarantineResult(
        store=str(doc["store"]),
        mode=str(doc["mode"]),
        quarantined=_tally(doc["quarantined"]),
        referenced_again=int(doc["referenced_again"]),
        changed=int(doc["changed"]),
        vanished=int(doc["vanished"]),
        already_active=int(doc["already_active"]),
        bad_keys=_refused(doc["bad_keys"]),
    )


def sum_quarantines(store: str, mode: str, parts: Sequence[QuarantineResult]) -> QuarantineResult:
    """The quarantine of ``store``: its ranges' results added up."""
    return _added(QuarantineResult(store, mode), parts)


def read_recover(doc: Document) -> RecoverResult:
    """A :class:`RecoverResult` from its JSON."""
    return RecoverResult(
        store=str(doc["store"]),
        confirmed=int(doc["confirmed"]),
        rolled_back=int(doc["rolled_back"]),
        purged=int(doc["purged"]),
        restored=int(doc["restored"]),
        lost_race=int(doc["lost_race"]),
        refused=_refused(doc["refused"]),
    )


def sum_recovers(store: str, parts: Sequence[RecoverResult]) -> RecoverResult:
    """What the ranges of ``store`` recovered (a retried range settles its first attempt's entries)."""
    return _added(RecoverResult(store), parts)


def read_scan(doc: Document) -> StoreScan:
    """A :class:`StoreScan` from its JSON."""
    return StoreScan(
        store=str(doc["store"]),
        url=str(doc["url"]),
        action=str(doc["action"]),
        scan_start=datetime.fromisoformat(doc["scan_start"]),
        min_age=_duration(doc["min_age"]),
        max_fraction=float(doc["max_fraction"]),
        listed=_tally(doc["listed"]),
        referenced=_tally(doc["referenced"]),
        candidates=_tally(doc["candidates"]),
        young=_tally(doc["young"]),
        excluded=_tally(doc["excluded"]),
        vanished=_tally(doc["vanished"]),
        strays=_tally(doc["strays"]),
        stray_policy=str(doc["stray_policy"]),
        stray_samples=[_info(s) for s in doc["stray_samples"]],
        changed=_tally(doc["changed"]),
        listed_as_of=datetime.fromisoformat(doc["listed_as_of"]) if doc["listed_as_of"] else None,
        references=int(doc["references"]),
        sources=[
            SourceReport(
                str(s["name"]), str(s["database"]), int(s["rows"]), int(s["foreign"]), int(s["covers"])
            )
            for s in doc["sources"]
        ],
        samples=[_info(s) for s in doc["samples"]],
        finished_at=datetime.fromisoformat(doc["finished_at"]) if doc["finished_at"] else None,
        referenced_bytes_measured=bool(doc["referenced_bytes_measured"]),
    )


def _info(doc: Document) -> ObjectInfo:
    return ObjectInfo(doc["key"], doc["size"], doc["mtime"], doc["etag"])


def _duration(value: Any) -> timedelta:
    return value if isinstance(value, timedelta) else parse_duration(str(value))


def sum_scans(parts: Sequence[StoreScan], *, show: int) -> StoreScan:
    """The scan of one store from the scans of its ranges, in range (key) order; see the module docstring."""
    if not parts:
        raise ValueError("a store has at least one range")
    first = parts[0]
    total = StoreScan(
        store=first.store,
        url=first.url,
        action=first.action,
        scan_start=min(part.scan_start for part in parts),
        min_age=first.min_age,
        max_fraction=first.max_fraction,
        sources=[SourceReport(s.name, s.database) for s in first.sources],
        stray_policy=first.stray_policy,
        listed_as_of=first.listed_as_of,
    )
    for part in parts:
        total.references += part.references
        for name in (
            "listed",
            "referenced",
            "candidates",
            "young",
            "excluded",
            "vanished",
            "strays",
            "changed",
        ):
            _add_tally(getattr(total, name), getattr(part, name))
        for source, ranged in zip(total.sources, part.sources, strict=True):
            source.covers += ranged.covers
            source.rows += ranged.rows
            source.foreign += ranged.foreign
        total.samples.extend(part.samples[: max(0, show - len(total.samples))])
        total.stray_samples.extend(part.stray_samples[: max(0, show - len(total.stray_samples))])
        total.referenced_bytes_measured = total.referenced_bytes_measured and part.referenced_bytes_measured
    finished = [part.finished_at for part in parts if part.finished_at is not None]
    total.finished_at = max(finished) if finished else None
    return total
