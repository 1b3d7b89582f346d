"""Exhaustive model checker of reclaim's object lifecycle protocol (DESIGN.md, "The object lifecycle").

One key ``k`` holds an old, unreferenced object. A collector quarantines and
purges it while two writers reuse the key and commit rows that reference it.
Every process is a program counter plus a few locals; every numbered step of
the protocol is one atomic transition; the checker enumerates every
interleaving (breadth first, with a visited set) and checks the safety
invariants in every reachable state. The shortest counterexample to each
invariant is reconstructed from parent pointers and printed as numbered steps.

Correspondence to the implementation (``src/reclaim/lifecycle``):

- shared state: where the object is (``at_key``/``trash`` hold a content
  generation, standing in for the ETag; ``None`` is "no object there"), the
  journal entry of ``k`` (``Entry``: state, version, quarantined generation;
  one ``objects`` row per episode, every change a compare-and-set on
  ``(state, version)`` as in ``Journal.transition``), and the writers whose
  rows referencing ``k`` are committed (``refs``);
- collector runs (``quarantine.py``, ``purge.py``): each run purges what is
  due, quarantines new candidates, then purges again (grace may be 0).
  quarantine: q1 scan, q2 record intent (refused while an entry is active),
  q3 re-check references, q4 stat again and move to the trash (``mark`` mode:
  stat only; vanished, changed or an occupied trash key roll back to
  RESTORED), q5 confirm QUARANTINED (grace starts here). purge: p1 claim
  QUARANTINED -> PURGING, p2 re-check references (``mark`` mode also compares
  the ETag), p3 delete, p4 confirm PURGED; referenced: p3r claim RESTORING, p4r
  move back (never over a newer object), p5r confirm RESTORED;
- recover (``recover.py``): after a crash of the collector (at most
  ``Config.crashes``, at any point between two steps), one atomic step settles
  the in-flight entry by looking where the object is, then the next run starts;
- the lease (``catalog/lease.py``): the collector may be paused past its
  lease (at most ``Config.pauses`` times, between any two steps, including
  between a lease check and the side effect it guards). A new holder then
  takes over (past ``safe_at``), recovers and starts the next run, while the
  old holder (``State.stale``) may resume at any time: its lease checks fail
  (self-fencing), its journal writes are refused (fencing token), so it makes
  at most the one side effect it had checked before the pause, then fails its
  second check and undoes what it can. The side effects are split into check
  and act: quarantine q4 stat + check, q4m move, q4c check again (lost: move
  back, never over an object, and stop: ``quarantine._move``); purge p3 check,
  p3m act (move mode: delete the trash copy; mark mode: stage ``k`` in the
  trash, or with ``staging=False``, S3, delete ``k``), p3c check again (lost:
  move back and stop), p3x delete the staged copy (``purge._delete_staged``);
  recover moves a staged copy of a PURGING mark entry back;
- writer A (``ensure.py``): w1 reuse the object at ``k`` or upload it, w2
  commit the row, w3 read the active entry: QUARANTINED -> claim by CAS, move
  back (mark mode: verify the object is at ``k`` and is the generation
  quarantined, else GONE), confirm (RESTORED); in flight -> wait; none -> stat
  (PRESENT or GONE, GONE -> upload again);
- writer B: w1 then w2, without ``ensure``. ``grace`` longer than any writer
  transaction is modelled as: while B is between w1 and w2, a quarantine
  confirmed (q5, or recover's confirmation) inside that window cannot be
  purged before B commits (its w1..w2 window cannot contain a whole grace).

Run ``python model/lifecycle_model.py --help``. Standard library only, so that
the model stays independent of the code it describes.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

QUARANTINING = "QUARANTINING"
QUARANTINED = "QUARANTINED"
PURGING = "PURGING"
PURGED = "PURGED"
RESTORING = "RESTORING"
RESTORED = "RESTORED"
IN_FLIGHT = frozenset({QUARANTINING, PURGING, RESTORING})
TERMINAL = frozenset({PURGED, RESTORED})

MODES = ("move", "mark")
#: deliberate protocol breakages; each must be caught (see ``EXPECTED_CATCH``)
MUTATIONS = (
    "no-purge-recheck",
    "no-quarantine-recheck",
    "ensure-no-cas",
    "recover-forward-purging",
    "grace-from-intent",
    "no-self-fencing",
    "no-undo",
    "no-ensure-verify",
    "takeover-at-expiry",
)

INV_REFERENCED = "1 referenced key never purged"
INV_REFERENCED_B = "1 referenced key never purged (writer B, no ensure)"
INV_AVAILABLE = "2 ensure's answer holds"
INV_CLAIMS = "3 claims win"
INV_SETTLED = "4 nothing half-lost"
INV_DEADLOCK = "no process stuck"

#: collector program counters where no crash or pause is injected (not steps of a run)
_IDLE_PCS = frozenset({"done", "crashed", "paused"})
#: the phases of one collector run (``reclaim run``: purge due, quarantine new; grace may be 0)
_RUN_PHASES = ("purge", "quarantine", "purge")


@dataclass(frozen=True)
class Config:
    """One configuration of the model.

    ``grace``: True models grace > 0 (longer than writer B's transaction),
    False grace = 0 (no constraint on writer B). ``runs`` bounds the collector
    runs (a crash or a pause ends the current run). ``pauses`` bounds how often
    the collector is paused past its lease. ``staging``: ``mark`` purges stage
    the object in the trash before deleting it (a store that renames
    atomically); False is S3, where p3 deletes ``k`` right after its check.
    ``mutation`` names a deliberate break.
    """

    mode: str = "move"
    crashes: int = 0
    grace: bool = True
    runs: int = 2
    pauses: int = 0
    staging: bool = True
    mutation: str | None = None

    @property
    def writer_b_protected(self) -> bool:
        """Whether the protocol claims to protect a writer without ``ensure``.

        Only in ``move`` mode with grace > 0: the object leaves ``k`` at q4, so a
        writer that saw it at ``k`` has a w1..w2 window containing q4..p2 and
        hence a whole grace period. In ``mark`` mode the object stays at ``k``
        until the delete, so the window need only straddle p2..p3. With a
        collector paused past its lease, not even in ``move`` mode: its checked
        delete of the trash copy, made after the takeover, can hit the copy of a
        *newer* quarantine of ``k`` (an object B uploaded and reused), inside
        that quarantine's grace (found by this model; see model/README.md).
        """
        return self.grace and self.mode == "move" and self.pauses == 0

    def name(self) -> str:
        """A short label for reports."""
        grace = "grace>0" if self.grace else "grace=0"
        staging = " no-staging" if self.mode == "mark" and not self.staging else ""
        broken = f" break={self.mutation}" if self.mutation else ""
        return (
            f"mode={self.mode}{staging} crashes={self.crashes} pauses={self.pauses} {grace} "
            f"runs={self.runs}{broken}"
        )


@dataclass(frozen=True)
class Entry:
    """The journal entry of ``k``: lifecycle state, version (CAS token), generation quarantined."""

    state: str
    version: int
    gen: int


@dataclass(frozen=True)
class Collector:
    """The collector process: run number, phase within the run, step, and its locals.

    ``ver`` is the entry version this process last wrote (what its next CAS
    expects); ``gen`` the object generation its scan saw (the ETag it journals).
    ``stale``: this is the old holder, paused past its lease (``State.stale``).
    """

    pc: str = "p1"
    run: int = 1
    phase: int = 0
    crashes: int = 0
    pauses: int = 0
    ver: int = 0
    gen: int = 0
    stale: bool = False


@dataclass(frozen=True)
class WriterA:
    """Writer A (calls ``ensure``): step, the entry version it read or wrote, ensure's answer.

    ``answered_empty``: ensure answered while nothing was at ``k`` (a false
    PRESENT/RESTORED breaks invariant 2 at once, whatever happens later).
    """

    pc: str = "w1"
    ver: int = 0
    result: str | None = None
    answered_empty: bool = False


@dataclass(frozen=True)
class State:
    """Everything shared plus every process; hashable, so the explorer can keep a visited set."""

    at_key: int | None = 0
    trash: int | None = None
    entry: Entry | None = None
    refs: frozenset[str] = frozenset()
    collector: Collector = field(default_factory=Collector)
    a: WriterA = field(default_factory=WriterA)
    b_pc: str = "w1"
    #: B's w1..w2 window contains a confirmed quarantine: grace > 0 forbids purging it before w2
    b_straddle: bool = False
    next_gen: int = 1
    version: int = 0
    #: entry versions a claim (ensure's CAS) succeeded from, and a purge (p1's CAS) succeeded from
    claimed: frozenset[int] = frozenset()
    purge_claimed: frozenset[int] = frozenset()
    #: this state is the one recover just produced (invariant 4 is checked here)
    just_recovered: bool = False
    #: the old holder, paused past its lease (its clock says it is past its deadline) and
    #: resumable at any time while a new holder runs in ``collector``; None once it stopped
    stale: Collector | None = None
    #: ``takeover-at-expiry`` only: the old holder's own clock has not reached its deadline yet
    stale_clock_valid: bool = False


Step = tuple[str, State]
_T = TypeVar("_T")


def replace(obj: _T, /, **changes: Any) -> _T:
    """``dataclasses.replace`` without ``__init__`` (no validation, no ``__post_init__`` here): 3x faster.

    The explorer builds a few hundred thousand states; this is where its time goes.
    """
    assert changes.keys() <= obj.__dataclass_fields__.keys(), sorted(changes)  # type: ignore[attr-defined]
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__, **changes)
    return new


def _write(s: State, state: str, *, gen: int | None = None) -> State:
    """Write the entry (a new version); the caller has already compared state and version."""
    version = s.version + 1
    old_gen = s.entry.gen if s.entry is not None else 0
    return replace(s, entry=Entry(state, version, old_gen if gen is None else gen), version=version)


def _cas(s: State, expect: str, version: int, new: str) -> State | None:
    """Compare-and-set as ``Journal.transition``: applies only if state and version are unchanged."""
    if s.entry is None or s.entry.state != expect or s.entry.version != version:
        return None
    return _write(s, new)


def _upload(s: State) -> State:
    """A writer uploads its bytes to ``k`` (a new generation); always safe, never loses data."""
    return replace(s, at_key=s.next_gen, next_gen=s.next_gen + 1)


def _move_back(s: State) -> State:
    """``finish_restore``'s move trash -> k, which never overwrites a newer object at ``k``."""
    if s.trash is not None and s.at_key is None:
        return replace(s, at_key=s.trash, trash=None)
    return s  # a newer upload at k wins (the trash copy stays, for ``check``), or both copies are gone


def _confirm_quarantined(s: State, cfg: Config) -> State:
    """Grace starts when the quarantine is confirmed (q5 or recover), after the move."""
    if cfg.grace and s.b_pc == "w2" and cfg.mutation != "grace-from-intent":
        return replace(s, b_straddle=True)
    return s


# ---------------------------------------------------------------- collector
# One function per step; each returns the step (label, next state), or None
# when the step cannot be taken now (the process waits).

StepFn = Callable[[State, Config], Step | None]


def _at(s: State, **changes: Any) -> State:
    """``s`` with the collector's program counter or locals changed."""
    return replace(s, collector=replace(s.collector, **changes))


def _next_phase(s: State, cfg: Config) -> State:
    """Leave the current phase: start the next one, the next run, or stop."""
    c = s.collector
    if c.phase + 1 < len(_RUN_PHASES):
        phase = c.phase + 1
        c = replace(c, phase=phase, pc="p1" if _RUN_PHASES[phase] == "purge" else "q1")
    elif c.run < cfg.runs:
        c = replace(c, run=c.run + 1, phase=0, pc="p1")
    else:
        c = replace(c, pc="done")
    return replace(s, collector=c)


def _cas_or_stop(s: State, cfg: Config, expect: str, new: str, label: str) -> Step:
    """The collector's compare-and-set ending a phase; losing it means someone else owns the entry."""
    t = _cas(s, expect, s.collector.ver, new)
    if t is None:
        return (f"collector {label.split()[0]} CAS fails -> leaves the entry alone", _next_phase(s, cfg))
    return (f"collector {label}", _next_phase(t, cfg))


def _lease_ok(s: State, cfg: Config) -> bool:
    """``Lease.check`` by the collector's own monotonic clock (``ttl - margin`` since the last renewal).

    The holder always passes. The old holder, paused past its lease, fails
    every check after it resumes: the takeover waited until its own clock had
    stopped it (``safe_at``). ``no-self-fencing``: its checks keep passing;
    ``takeover-at-expiry``: the new holder took over at the expiry, while the
    old one's clock still had the margin to go, so its checks pass until its
    own deadline (a step of its own).
    """
    if not s.collector.stale or cfg.mutation == "no-self-fencing":
        return True
    return cfg.mutation == "takeover-at-expiry" and s.stale_clock_valid


def _lost(s: State, label: str) -> Step:
    """A failed lease check: ``LeaseLost``, the process stops before the side effect (exit 12)."""
    return (f"collector {label}", _at(s, pc="stopped"))


def _undo(s: State, step: str) -> Step:
    """The lease lost after a checked move: move trash -> k back (never over an object), then stop.

    ``quarantine._move`` and ``purge._delete_staged``: a failure of the move
    back (``FileExistsError``: a newer object at ``k``; ``FileNotFoundError``:
    recover or ensure already moved it, or a purge deleted it) is ignored.
    """
    if s.trash is not None and s.at_key is None:
        t = replace(s, at_key=s.trash, trash=None)
        return (f"collector {step} lease lost -> moves trash -> k back, stops", _at(t, pc="stopped"))
    return (
        f"collector {step} lease lost -> nothing to move back (k taken or trash empty), stops",
        _at(s, pc="stopped"),
    )


def _q1_scan(s: State, cfg: Config) -> Step:
    if not s.refs and s.at_key is not None:
        return ("collector q1 scan: k listed, unreferenced -> candidate", _at(s, pc="q2", gen=s.at_key))
    return ("collector q1 scan: k referenced or absent -> no candidate", _next_phase(s, cfg))


def _q2_intent(s: State, cfg: Config) -> Step:
    if s.entry is not None and s.entry.state not in TERMINAL:
        return ("collector q2 intent refused: an entry is active", _next_phase(s, cfg))
    t = _write(s, QUARANTINING, gen=s.collector.gen)
    if cfg.mutation == "grace-from-intent" and cfg.grace and s.b_pc == "w2":
        t = replace(t, b_straddle=True)
    nxt = "q4" if cfg.mutation == "no-quarantine-recheck" else "q3"
    return (f"collector q2 records intent QUARANTINING v{t.version}", _at(t, pc=nxt, ver=t.version))


def _q3_recheck(s: State, cfg: Config) -> Step:
    if s.refs:
        return _cas_or_stop(s, cfg, QUARANTINING, RESTORED, "q3 re-check: referenced -> RESTORED")
    return ("collector q3 re-check: unreferenced", _at(s, pc="q4"))


def _q4_stat(s: State, cfg: Config) -> Step:
    """``_unchanged`` (stat again), then in move mode ``_move``'s lease check."""
    if s.at_key is None or s.at_key != s.collector.gen:
        return _cas_or_stop(s, cfg, QUARANTINING, RESTORED, "q4 stat: vanished/changed -> RESTORED")
    if cfg.mode == "mark":
        return ("collector q4 stat: unchanged (mark mode: nothing moves)", _at(s, pc="q5"))
    if not _lease_ok(s, cfg):
        return _lost(s, "q4 lease check fails -> stops")
    return ("collector q4 stat: unchanged, lease checked", _at(s, pc="q4m"))


def _q4m_move(s: State, cfg: Config) -> Step:
    """``store.move(k, trash)``: moves whatever is at ``k`` now, never over an object in the trash."""
    if s.at_key is None or s.trash is not None:
        return _cas_or_stop(
            s, cfg, QUARANTINING, RESTORED, "q4m move fails: vanished/trash occupied -> RESTORED"
        )
    nxt = "q5" if cfg.mutation == "no-undo" else "q4c"
    return ("collector q4m moves k -> trash", _at(replace(s, at_key=None, trash=s.at_key), pc=nxt))


def _q4c_recheck(s: State, cfg: Config) -> Step:
    """``_move``'s second lease check: lost -> move back and stop."""
    if _lease_ok(s, cfg):
        return ("collector q4c lease still held", _at(s, pc="q5"))
    return _undo(s, "q4c")


def _q5_confirm(s: State, cfg: Config) -> Step:
    t = _cas(s, QUARANTINING, s.collector.ver, QUARANTINED)
    if t is None:
        return ("collector q5 CAS fails -> leaves the entry alone", _next_phase(s, cfg))
    t = _confirm_quarantined(t, cfg)
    return (f"collector q5 confirms QUARANTINED v{t.version} (grace starts)", _next_phase(t, cfg))


def _p1_claim(s: State, cfg: Config) -> Step | None:
    e = s.entry
    if e is None or e.state != QUARANTINED:
        return ("collector p1: nothing due", _next_phase(s, cfg))
    if cfg.grace and s.b_straddle:
        return None  # not due yet: the grace outlasts writer B's open transaction
    t = _write(s, PURGING)
    t = replace(t, purge_claimed=t.purge_claimed | {e.version})
    return (f"collector p1 CAS QUARANTINED v{e.version} -> PURGING", _at(t, pc="p2", ver=t.version))


def _p2_recheck(s: State, cfg: Config) -> Step:
    e = s.entry
    if cfg.mutation != "no-purge-recheck":
        if s.refs:
            return ("collector p2 re-check: referenced -> restore", _at(s, pc="p3r"))
        if cfg.mode == "mark" and e is not None and s.at_key is not None and s.at_key != e.gen:
            return _cas_or_stop(s, cfg, PURGING, RESTORED, "p2 ETag changed since quarantine -> RESTORED")
    return ("collector p2 re-check: unreferenced -> delete", _at(s, pc="p3"))


def _p3_check(s: State, cfg: Config) -> Step:
    """``_delete``/``_delete_staged``: the lease check right before the delete request (or the staging)."""
    if not _lease_ok(s, cfg):
        return _lost(s, "p3 lease check fails -> stops")
    return ("collector p3 checks its lease", _at(s, pc="p3m"))


def _p3m_act(s: State, cfg: Config) -> Step:
    """The side effect p3 checked: delete (move mode, or mark on S3), or stage ``k`` in the trash."""
    if cfg.mode == "move":
        return ("collector p3m deletes the trash copy", _at(replace(s, trash=None), pc="p4"))
    if not cfg.staging:
        return ("collector p3m deletes k", _at(replace(s, at_key=None), pc="p4"))
    if s.at_key is None:
        return ("collector p3m: k already gone", _at(s, pc="p4"))
    if s.trash is not None:
        # never delete in place: k may hold a writer's new upload; the stray is another collector's
        return ("collector p3m: staging key taken -> leaves k", _at(s, pc="p3k"))
    nxt = "p3x" if cfg.mutation == "no-undo" else "p3c"
    return ("collector p3m stages k -> trash", _at(replace(s, at_key=None, trash=s.at_key), pc=nxt))


def _p3k_keep(s: State, cfg: Config) -> Step:
    """``_delete_staged`` found the staging key taken: the entry goes back to QUARANTINED, k stays."""
    return _cas_or_stop(s, cfg, PURGING, QUARANTINED, "p3k CAS PURGING -> QUARANTINED (staging key taken)")


def _p3c_recheck(s: State, cfg: Config) -> Step:
    """``_delete_staged``'s second lease check: lost -> move the staged copy back and stop."""
    if _lease_ok(s, cfg):
        return ("collector p3c lease still held", _at(s, pc="p3x"))
    return _undo(s, "p3c")


def _p3x_delete_staged(s: State, cfg: Config) -> Step:
    return ("collector p3x deletes the staged copy", _at(replace(s, trash=None), pc="p4"))


def _p4_confirm(s: State, cfg: Config) -> Step:
    return _cas_or_stop(s, cfg, PURGING, PURGED, "p4 CAS PURGING -> PURGED")


def _p3r_claim(s: State, cfg: Config) -> Step:
    t = _cas(s, PURGING, s.collector.ver, RESTORING)
    if t is None:
        return ("collector p3r CAS fails -> leaves the entry alone", _next_phase(s, cfg))
    nxt = "p4r" if cfg.mode == "move" else "p5r"
    return ("collector p3r CAS PURGING -> RESTORING", _at(t, pc=nxt, ver=t.version))


def _p4r_move_back(s: State, cfg: Config) -> Step:
    """``finish_restore``'s move back: not preceded by a lease check (moving back is always safe)."""
    return ("collector p4r moves trash -> k", _at(_move_back(s), pc="p5r"))


def _restore_outcome(s: State, cfg: Config) -> str:
    """``finish_restore``'s confirmation: mark mode writes RESTORED without looking (nothing moved)."""
    if cfg.mode == "mark" or s.at_key is not None:
        return RESTORED
    return PURGED  # move mode, neither copy exists any more


def _p5r_confirm(s: State, cfg: Config) -> Step:
    outcome = _restore_outcome(s, cfg)
    return _cas_or_stop(s, cfg, RESTORING, outcome, f"p5r CAS RESTORING -> {outcome}")


def _recover(s: State, cfg: Config) -> Step:
    """``recover_entry``: one atomic step settling the entry of ``k`` by looking where the object is."""
    e = s.entry
    if e is None or e.state not in IN_FLIGHT:
        return ("recover: nothing in flight", s)
    if e.state == QUARANTINING:
        if cfg.mode == "move" and s.trash is not None and s.at_key is None:
            t = _confirm_quarantined(_write(s, QUARANTINED), cfg)
            return ("recover: QUARANTINING, moved -> QUARANTINED (grace starts now)", t)
        return ("recover: QUARANTINING, not moved -> RESTORED", _write(s, RESTORED))
    if e.state == PURGING:
        present = s.trash is not None if cfg.mode == "move" else s.at_key is not None
        if cfg.mode == "mark" and not present and s.trash is not None and cfg.staging:
            s = replace(s, at_key=s.trash, trash=None)  # ``_marked_back``: the staged copy goes back to k
            return ("recover: PURGING, staged copy moved back -> QUARANTINED", _write(s, QUARANTINED))
        if present and cfg.mutation == "recover-forward-purging":
            gone = replace(s, trash=None) if cfg.mode == "move" else replace(s, at_key=None)
            return ("recover: PURGING, object present -> deletes it, PURGED", _write(gone, PURGED))
        if present:
            return (
                "recover: PURGING, object present -> QUARANTINED (re-check redone)",
                _write(s, QUARANTINED),
            )
        return ("recover: PURGING, object gone -> PURGED", _write(s, PURGED))
    t = _move_back(s) if cfg.mode == "move" else s
    outcome = _restore_outcome(t, cfg)
    return (f"recover: RESTORING -> moves back, {outcome}", _write(t, outcome))


def _after_crash(s: State, cfg: Config) -> Step:
    """Recover, then the next run starts (the crashed run is over); invariant 4 is checked here."""
    label, t = _recover(s, cfg)
    t = _at(t, phase=len(_RUN_PHASES) - 1, ver=0, gen=0)
    return (label, replace(_next_phase(t, cfg), just_recovered=True))


def _takeover(s: State, cfg: Config) -> Step:
    """A new holder takes the lease over (past ``safe_at``), recovers, then the next run starts.

    The old holder lives on in ``State.stale``; the fence grew, so its journal
    writes are refused from now on (``_stale_step``).
    """
    label, t = _after_crash(s, cfg)
    return (f"new holder takes the lease over; {label}", t)


_COLLECTOR: dict[str, StepFn] = {
    "q1": _q1_scan,
    "q2": _q2_intent,
    "q3": _q3_recheck,
    "q4": _q4_stat,
    "q4m": _q4m_move,
    "q4c": _q4c_recheck,
    "q5": _q5_confirm,
    "p1": _p1_claim,
    "p2": _p2_recheck,
    "p3": _p3_check,
    "p3m": _p3m_act,
    "p3c": _p3c_recheck,
    "p3k": _p3k_keep,
    "p3x": _p3x_delete_staged,
    "p4": _p4_confirm,
    "p3r": _p3r_claim,
    "p4r": _p4r_move_back,
    "p5r": _p5r_confirm,
    "crashed": _after_crash,
    "paused": _takeover,
}


def _stale_step(s: State, cfg: Config) -> Step:
    """One step of the old holder after it resumes: its own next step, under the lease's fences.

    Reads and store side effects happen as in its program (a check fails, see
    ``_lease_ok``; an act it had checked before the pause happens); a journal
    write is refused by the fencing token, and so is the start of a new phase
    (``execute`` checks the lease first): it stops there, changing nothing.
    """
    z = s.stale
    assert z is not None
    step = _COLLECTOR[z.pc](replace(s, collector=z), cfg)
    if step is None or step[1].version != s.version:
        return (
            f"stale collector {z.pc}: journal write refused (fencing token) -> stops",
            replace(s, stale=None),
        )
    label, t = step
    c = t.collector
    label = "stale " + label
    if c.pc == "stopped":
        return (label, replace(t, collector=s.collector, stale=None))
    if c.pc == "done" or (c.run, c.phase) != (z.run, z.phase):
        return (f"{label}; next phase refused -> stops", replace(t, collector=s.collector, stale=None))
    return (label, replace(t, collector=s.collector, stale=c))


# ---------------------------------------------------------------- writers


def _a(s: State, **changes: Any) -> State:
    """``s`` with writer A's program counter or locals changed."""
    return replace(s, a=replace(s.a, **changes))


def _a_w1_check(s: State, cfg: Config) -> Step:
    if s.at_key is None:
        return ("writer A w1: k missing -> uploads", _a(_upload(s), pc="w2"))
    return ("writer A w1: k exists -> reuses it", _a(s, pc="w2"))


def _a_w2_commit(s: State, cfg: Config) -> Step:
    return ("writer A w2 commits its row", _a(replace(s, refs=s.refs | {"A"}), pc="w3"))


def _a_w3_ensure(s: State, cfg: Config) -> Step | None:
    e = s.entry
    if e is None or e.state in TERMINAL:
        return ("writer A w3 ensure: no active entry", _a(s, pc="stat"))
    if e.state == QUARANTINED or (e.state == PURGING and cfg.mutation == "ensure-no-cas"):
        return (f"writer A w3 ensure reads {e.state} v{e.version}", _a(s, pc="claim", ver=e.version))
    return None  # in flight: wait until the entry settles (recover unblocks a crashed collector's)


def _a_claim(s: State, cfg: Config) -> Step:
    if cfg.mutation == "ensure-no-cas":
        t: State | None = _write(s, RESTORING)  # blind write: whatever happened since the read
    else:
        t = _cas(s, QUARANTINED, s.a.ver, RESTORING)
    if t is None:
        return ("writer A ensure claim CAS fails -> reads again", _a(s, pc="w3"))
    t = replace(t, claimed=t.claimed | {s.a.ver})
    nxt = "move" if cfg.mode == "move" else "fin"
    return (f"writer A ensure claims v{s.a.ver} -> RESTORING", _a(t, pc=nxt, ver=t.version))


def _a_move_back(s: State, cfg: Config) -> Step:
    return ("writer A ensure moves trash -> k", _a(_move_back(s), pc="fin"))


def _a_confirm(s: State, cfg: Config) -> Step:
    if cfg.mode == "mark" and cfg.mutation != "no-ensure-verify":
        return _a_verify_marked(s, cfg)
    outcome = RESTORED if s.at_key is not None or cfg.mode == "mark" else PURGED  # PURGED: no copy left
    if cfg.mutation == "ensure-no-cas":
        t: State | None = _write(s, outcome)
    else:
        t = _cas(s, RESTORING, s.a.ver, outcome)
    if t is None:
        return ("writer A ensure confirm CAS fails -> reads again", _a(s, pc="w3"))
    if outcome == RESTORED:
        return ("writer A ensure confirms RESTORED, returns RESTORED", _a(t, pc="done", result=RESTORED))
    return ("writer A ensure finds no copy, returns GONE", _a(t, pc="reupload", result="GONE"))


def _a_verify_marked(s: State, cfg: Config) -> Step:
    """``_claim_marked``: the claimed mark entry is settled by what is at ``k`` (stat, ETag)."""
    e = s.entry
    assert e is not None
    if s.at_key is None:
        outcome, result, why = PURGED, "GONE", "k missing -> PURGED"
    elif s.at_key != e.gen:
        outcome, result, why = RESTORED, "GONE", "k replaced since quarantine -> RESTORED"
    else:
        outcome, result, why = RESTORED, RESTORED, "k holds the quarantined object -> RESTORED"
    t = _cas(s, RESTORING, s.a.ver, outcome)
    if t is None:
        return ("writer A ensure confirm CAS fails -> reads again", _a(s, pc="w3"))
    nxt = "done" if result == RESTORED else "reupload"
    return (f"writer A ensure verifies: {why}, returns {result}", _a(t, pc=nxt, result=result))


def _a_stat(s: State, cfg: Config) -> Step:
    if s.at_key is not None:
        return ("writer A ensure: k exists, returns PRESENT", _a(s, pc="done", result="PRESENT"))
    return ("writer A ensure: k missing, returns GONE", _a(s, pc="reupload", result="GONE"))


def _a_reupload(s: State, cfg: Config) -> Step:
    return ("writer A uploads again", _a(_upload(s), pc="done", result="REUPLOADED"))


_WRITER_A: dict[str, StepFn] = {
    "w1": _a_w1_check,
    "w2": _a_w2_commit,
    "w3": _a_w3_ensure,
    "claim": _a_claim,
    "move": _a_move_back,
    "fin": _a_confirm,
    "stat": _a_stat,
    "reupload": _a_reupload,
}


def _b_w1_check(s: State, cfg: Config) -> Step:
    if s.at_key is None:
        return ("writer B w1: k missing -> uploads", replace(_upload(s), b_pc="w2"))
    return ("writer B w1: k exists -> reuses it", replace(s, b_pc="w2"))


def _b_w2_commit(s: State, cfg: Config) -> Step:
    return ("writer B w2 commits its row", replace(s, refs=s.refs | {"B"}, b_pc="done", b_straddle=False))


_WRITER_B: dict[str, StepFn] = {"w1": _b_w1_check, "w2": _b_w2_commit}


def successors(state: State, cfg: Config) -> list[Step]:
    """Every (label, next state) that one atomic step of any process reaches from ``state``."""
    s = replace(state, just_recovered=False) if state.just_recovered else state
    c = s.collector
    out: list[Step] = []
    if c.pc not in _IDLE_PCS and c.crashes < cfg.crashes:
        out.append((f"collector crashes before {c.pc}", _at(s, pc="crashed", crashes=c.crashes + 1)))
    if c.pc not in _IDLE_PCS and c.pauses < cfg.pauses and s.stale is None:
        label = f"collector is paused past its lease before {c.pc}"
        stale: Collector | None = replace(c, stale=True)
        if c.pc not in _ACT_PCS and cfg.mutation not in {"no-self-fencing", "takeover-at-expiry"}:
            # its next side effect is guarded by a check or is a journal write: when it resumes it
            # can only stop, so it is left out (fewer states, same reachable store and journal)
            stale, label = None, f"{label} (resumes only to stop)"
        paused = replace(
            s,
            collector=replace(c, pc="paused", pauses=c.pauses + 1),
            stale=stale,
            stale_clock_valid=cfg.mutation == "takeover-at-expiry",
        )
        out.append((label, paused))
    for fn in (_COLLECTOR.get(c.pc), _WRITER_A.get(s.a.pc), _WRITER_B.get(s.b_pc)):
        step = fn(s, cfg) if fn is not None else None
        if step is not None:
            if fn is _WRITER_A.get(s.a.pc) and step[1].a.result != s.a.result and step[1].at_key is None:
                step = (step[0], _a(step[1], answered_empty=True))  # the answer was false when given
            out.append(step)
    if s.stale is not None:
        out.append(_stale_step(s, cfg))
        if s.stale_clock_valid:
            out.append(
                ("stale collector's own clock reaches its deadline", replace(s, stale_clock_valid=False))
            )
    return out


# ---------------------------------------------------------------- invariants


#: where the old holder may still change the store when it resumes: an act it checked before the
#: pause (q4m, p3m, p3x), the undo after its second check (q4c, p3c), the unchecked move back (p4r)
_ACT_PCS = frozenset({"q4m", "q4c", "p3m", "p3c", "p3x", "p4r"})
#: the old holder's post-act checks: from there it moves what it moved back (``_undo``)
_UNDO_PCS = frozenset({"q4c", "p3c"})


def _undo_pending(s: State) -> bool:
    """A resumed stale collector moved ``k`` to the trash and its very next step moves it back.

    This is the window the design accepts (a check and its act are two steps,
    so the act is made reversible): a reader between the two steps finds ``k``
    missing, but the object is not lost and is back before the collector stops.
    """
    return s.stale is not None and s.stale.pc in _UNDO_PCS and s.trash is not None and s.at_key is None


def _at_key_or_returning(s: State) -> bool:
    """The object is at ``k``, or a stale collector's undo is about to put it back (``_undo_pending``)."""
    return s.at_key is not None or _undo_pending(s)


def _available_or_restorable(s: State) -> bool:
    """The object is at ``k``, or in the trash under an active entry (the purge re-check restores it)."""
    if _at_key_or_returning(s):
        return True
    return s.trash is not None and s.entry is not None and s.entry.state not in TERMINAL


def finished(s: State) -> bool:
    """Every process has run to its end."""
    return s.collector.pc == "done" and s.stale is None and s.a.pc == "done" and s.b_pc == "done"


def _settled(s: State, cfg: Config) -> str | None:
    """Why the journal disagrees with the store, or None (invariant 4).

    With a collector paused past its lease (``cfg.pauses``) the old holder's
    one checked act is not journaled, so the store may disagree with the
    journal in two ways that lose nothing a writer relies on: its undo can
    put an object back after the new holder recorded it PURGED (or leave a
    stray copy when ``k`` was taken), and in ``move`` mode its checked delete
    of the trash key can remove a copy the journal still lists (QUARANTINED
    after recover, or a newer quarantine's copy, then RESTORED by recover):
    such an object was unreferenced at a re-check and is not at ``k``, so
    writers upload again (``ensure`` answers GONE). There, only "nothing in
    flight" and mark mode's "no copy missing that the journal lists" are checked.
    """
    e = s.entry
    paused = cfg.pauses > 0
    if e is None:
        return "stray trash copy without an entry" if s.trash is not None and not paused else None
    if e.state in IN_FLIGHT:
        return f"entry left in flight ({e.state})"
    if paused and cfg.mode == "move":
        return None
    if e.state == QUARANTINED:
        ok = s.trash is not None if cfg.mode == "move" else s.at_key is not None
        return None if ok else "QUARANTINED but the object is not where quarantine put it"
    if e.state == PURGED:
        ok = s.trash is None if cfg.mode == "move" else s.at_key != e.gen
        return None if ok or paused else "PURGED but the quarantined object still exists"
    return None if s.at_key is not None else "RESTORED but nothing at k"


def violations(s: State, cfg: Config) -> list[tuple[str, str]]:
    """(invariant, explanation) for each invariant ``s`` violates.

    1. a writer that finished its protocol with a committed row finds the
       object at ``k``, or in the trash under an active entry (whose purge
       re-check will restore it); for writer B see ``Config.writer_b_protected``;
    2. ensure answers PRESENT or RESTORED only while the object is at ``k``,
       and once it answered (or the writer uploaded again after GONE), the
       object stays at ``k`` in every later state, except while a resumed
       stale collector's undo is about to put it back (``_undo_pending``);
    3. no entry version is both claimed by ensure's CAS and by purge's p1 CAS;
    4. right after recover, and when every process has finished, nothing is in
       flight and the journal agrees with the store (``_settled``).
    """
    out: list[tuple[str, str]] = []
    if s.a.pc == "done" and not _available_or_restorable(s):
        out.append((INV_REFERENCED, "writer A finished with a committed row, the object is gone"))
    if s.b_pc == "done" and not _available_or_restorable(s):
        out.append((INV_REFERENCED_B, "writer B committed its row, the object is gone"))
    if s.a.result in {"PRESENT", RESTORED} and s.a.answered_empty:
        out.append((INV_AVAILABLE, f"ensure returned {s.a.result} while k was empty"))
    elif s.a.result in {"PRESENT", RESTORED, "REUPLOADED"} and not _at_key_or_returning(s):
        out.append((INV_AVAILABLE, f"ensure returned {s.a.result} but k is empty now"))
    if both := s.claimed & s.purge_claimed:
        out.append((INV_CLAIMS, f"a claim and a purge both succeeded from version {min(both)}"))
    if (s.just_recovered and not _undo_pending(s)) or finished(s):
        why = _settled(s, cfg)
        if why is not None:
            out.append((INV_SETTLED, why))
    return out


# ---------------------------------------------------------------- explorer


@dataclass(frozen=True)
class Counterexample:
    """The shortest path to a state violating ``invariant`` (step labels, in order)."""

    invariant: str
    why: str
    steps: tuple[str, ...]
    final: State

    def render(self) -> str:
        """Numbered steps, then the violation and the final state."""
        lines = [f"  {i:2d}. {step}" for i, step in enumerate(self.steps, 1)]
        f = self.final
        lines.append(f"  => violates [{self.invariant}]: {self.why}")
        lines.append(f"     final: at_key={f.at_key} trash={f.trash} entry={f.entry} refs={sorted(f.refs)}")
        return "\n".join(lines)


@dataclass
class Result:
    """What exploring one configuration found."""

    config: Config
    states: int = 0
    transitions: int = 0
    violations: dict[str, Counterexample] = field(default_factory=dict)
    limitations: dict[str, Counterexample] = field(default_factory=dict)
    #: every kind of step taken somewhere (labels without versions): shows the model is not vacuous
    fired: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        """No invariant the protocol claims was violated."""
        return not self.violations


_VERSION = re.compile(r" v\d+")


def _trace(parents: dict[State, tuple[State, str] | None], s: State) -> tuple[str, ...]:
    steps: list[str] = []
    link = parents[s]
    while link is not None:
        s, label = link
        steps.append(label)
        link = parents[s]
    return tuple(reversed(steps))


def explore(cfg: Config) -> Result:
    """Breadth-first search over every interleaving; keeps the shortest counterexample per invariant.

    Writer B's losses count as violations only where the protocol claims to
    protect it (``Config.writer_b_protected``); elsewhere they are recorded as
    ``limitations`` (the documented reason grace must exceed writer transactions).
    """
    init = State()
    parents: dict[State, tuple[State, str] | None] = {init: None}
    queue = deque([init])
    result = Result(cfg, states=1)

    def record(s: State, found: list[tuple[str, str]]) -> None:
        for invariant, why in found:
            bucket = result.violations
            if invariant == INV_REFERENCED_B and not cfg.writer_b_protected:
                bucket = result.limitations
            if invariant not in bucket:
                bucket[invariant] = Counterexample(invariant, why, _trace(parents, s), s)

    record(init, violations(init, cfg))
    while queue:
        s = queue.popleft()
        steps = successors(s, cfg)
        if not steps and not finished(s):
            record(
                s, [(INV_DEADLOCK, f"no step enabled: collector {s.collector.pc}, A {s.a.pc}, B {s.b_pc}")]
            )
        for label, t in steps:
            result.transitions += 1
            result.fired.add(_VERSION.sub("", label))
            if t in parents:
                continue
            parents[t] = (s, label)
            result.states += 1
            record(t, violations(t, cfg))
            queue.append(t)
    return result


def configurations(
    modes: Sequence[str] = MODES,
    crashes: Sequence[int] = (0, 1),
    graces: Sequence[bool] = (True, False),
    runs: int = 2,
    mutation: str | None = None,
    pauses: Sequence[int] = (0, 1),
    staging: bool = True,
) -> list[Config]:
    """The cross product of the given parameters."""
    return [
        Config(mode=m, crashes=c, grace=g, runs=runs, pauses=n, staging=staging, mutation=mutation)
        for m, c, n, g in itertools.product(modes, crashes, pauses, graces)
    ]


#: for each mutation: configurations in which it must be caught, with the invariant it breaks there
EXPECTED_CATCH: dict[str, list[tuple[Config, str]]] = {
    "no-purge-recheck": [(Config(mode="move", grace=True), INV_REFERENCED_B)],
    "no-quarantine-recheck": [(Config(mode="move"), INV_AVAILABLE)],
    "ensure-no-cas": [(Config(mode="move"), INV_CLAIMS), (Config(mode="mark"), INV_AVAILABLE)],
    "recover-forward-purging": [(Config(mode="move", crashes=1, grace=True), INV_REFERENCED_B)],
    "grace-from-intent": [(Config(mode="move", grace=True), INV_REFERENCED_B)],
    "no-self-fencing": [(Config(mode="mark", pauses=1), INV_AVAILABLE)],
    "no-undo": [
        (Config(mode="mark", pauses=1), INV_AVAILABLE),
        (Config(mode="move", pauses=1), INV_AVAILABLE),
    ],
    "no-ensure-verify": [(Config(mode="mark", pauses=1), INV_AVAILABLE)],
    "takeover-at-expiry": [(Config(mode="mark", pauses=1), INV_AVAILABLE)],
}


def _print_result(r: Result, out: Callable[[str], None], *, verbose: bool) -> None:
    status = "OK" if r.ok else "VIOLATED: " + "; ".join(sorted(r.violations))
    out(f"{r.config.name():<60} states={r.states:>7,} transitions={r.transitions:>8,}  {status}")
    for cx in r.violations.values():
        out(cx.render())
    if r.limitations:
        if not r.config.grace:
            why = "with grace = 0 its w1..w2 can straddle a whole quarantine and purge"
        elif r.config.mode == "move":
            why = "a collector paused past its lease deletes the trash copy of a newer quarantine of k"
        else:
            why = (
                "mark mode leaves the object at k until p3, so w1..w2 can straddle p2..p3 whatever the grace"
            )
        out(f"  expected: writer B (no ensure) can lose data: {why} (-v shows how)")
        if verbose:
            for cx in r.limitations.values():
                out(cx.render())


def main(argv: Sequence[str] | None = None) -> int:
    """Check every selected configuration; exit 1 if any invariant the protocol claims is violated."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--mode", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument(
        "--crashes", nargs="+", type=int, default=[0, 1], help="collector crashes allowed (default: 0 and 1)"
    )
    p.add_argument("--grace", nargs="+", choices=["positive", "0"], default=["positive", "0"])
    p.add_argument("--runs", type=int, default=2, help="collector runs (default 2)")
    p.add_argument(
        "--pauses", nargs="+", type=int, default=[0, 1], help="pauses past the lease (default: 0 and 1)"
    )
    p.add_argument(
        "--no-staging", action="store_true", help="mark purges delete k right after the check (S3)"
    )
    p.add_argument("--break", dest="mutation", choices=MUTATIONS, help="deliberately break the protocol")
    p.add_argument("-v", "--verbose", action="store_true", help="also print writer B's expected losses")
    args = p.parse_args(argv)
    graces = [g == "positive" for g in args.grace]
    failed = False
    for cfg in configurations(
        args.mode, args.crashes, graces, args.runs, args.mutation, args.pauses, not args.no_staging
    ):
        r = explore(cfg)
        _print_result(r, print, verbose=args.verbose)
        failed = failed or not r.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
