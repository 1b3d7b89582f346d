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
- writer A (``ensure.py``): w1 reuse the object at ``k`` or upload it, w2
  commit the row, w3 read the active entry: QUARANTINED -> claim by CAS, move
  back, confirm (RESTORED); in flight -> wait; none -> stat (PRESENT or GONE,
  GONE -> upload again);
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
from dataclasses import dataclass, field, replace
from typing import Any

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
)

INV_REFERENCED = "1 referenced key never purged"
INV_REFERENCED_B = "1 referenced key never purged (writer B, no ensure)"
INV_AVAILABLE = "2 ensure's answer holds"
INV_CLAIMS = "3 claims win"
INV_SETTLED = "4 nothing half-lost"
INV_DEADLOCK = "no process stuck"

#: collector program counters that are not steps of a run
_IDLE_PCS = frozenset({"done", "crashed"})
#: the phases of one collector run (``reclaim run``: purge due, quarantine new; grace may be 0)
_RUN_PHASES = ("purge", "quarantine", "purge")


@dataclass(frozen=True)
class Config:
    """One configuration of the model.

    ``grace``: True models grace > 0 (longer than writer B's transaction),
    False grace = 0 (no constraint on writer B). ``runs`` bounds the collector
    runs (a crash ends the current run). ``mutation`` names a deliberate break.
    """

    mode: str = "move"
    crashes: int = 0
    grace: bool = True
    runs: int = 2
    mutation: str | None = None

    @property
    def writer_b_protected(self) -> bool:
        """Whether the protocol claims to protect a writer without ``ensure``.

        Only in ``move`` mode with grace > 0: the object leaves ``k`` at q4, so a
        writer that saw it at ``k`` has a w1..w2 window containing q4..p2 and
        hence a whole grace period. In ``mark`` mode the object stays at ``k``
        until the delete, so the window need only straddle p2..p3.
        """
        return self.grace and self.mode == "move"

    def name(self) -> str:
        """A short label for reports."""
        grace = "grace>0" if self.grace else "grace=0"
        broken = f" break={self.mutation}" if self.mutation else ""
        return f"mode={self.mode} crashes={self.crashes} {grace} runs={self.runs}{broken}"


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
    """

    pc: str = "p1"
    run: int = 1
    phase: int = 0
    crashes: int = 0
    ver: int = 0
    gen: int = 0


@dataclass(frozen=True)
class WriterA:
    """Writer A (calls ``ensure``): step, the entry version it read or wrote, ensure's answer."""

    pc: str = "w1"
    ver: int = 0
    result: str | None = None


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


Step = tuple[str, State]


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


def _q4_move(s: State, cfg: Config) -> Step:
    if s.at_key is None or s.at_key != s.collector.gen or (cfg.mode == "move" and s.trash is not None):
        return _cas_or_stop(s, cfg, QUARANTINING, RESTORED, "q4 vanished/changed/trash occupied -> RESTORED")
    if cfg.mode == "move":
        return ("collector q4 moves k -> trash", _at(replace(s, at_key=None, trash=s.at_key), pc="q5"))
    return ("collector q4 stat: unchanged (mark mode: nothing moves)", _at(s, pc="q5"))


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


def _p3_delete(s: State, cfg: Config) -> Step:
    if cfg.mode == "move":
        return ("collector p3 deletes the trash copy", _at(replace(s, trash=None), pc="p4"))
    return ("collector p3 deletes k", _at(replace(s, at_key=None), pc="p4"))


def _p4_confirm(s: State, cfg: Config) -> Step:
    return _cas_or_stop(s, cfg, PURGING, PURGED, "p4 CAS PURGING -> PURGED")


def _p3r_claim(s: State, cfg: Config) -> Step:
    t = _cas(s, PURGING, s.collector.ver, RESTORING)
    if t is None:
        return ("collector p3r CAS fails -> leaves the entry alone", _next_phase(s, cfg))
    nxt = "p4r" if cfg.mode == "move" else "p5r"
    return ("collector p3r CAS PURGING -> RESTORING", _at(t, pc=nxt, ver=t.version))


def _p4r_move_back(s: State, cfg: Config) -> Step:
    return ("collector p4r moves trash -> k", _at(_move_back(s), pc="p5r"))


def _p5r_confirm(s: State, cfg: Config) -> Step:
    outcome = RESTORED if s.at_key is not None else PURGED  # PURGED: neither copy exists any more
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
        if present and cfg.mutation == "recover-forward-purging":
            gone = replace(s, trash=None) if cfg.mode == "move" else replace(s, at_key=None)
            return ("recover: PURGING, object present -> deletes it, PURGED", _write(gone, PURGED))
        if present:
            return (
                "recover: PURGING, object present -> QUARANTINED (re-check redone)",
                _write(s, QUARANTINED),
            )
        return ("recover: PURGING, object gone -> PURGED", _write(s, PURGED))
    t = _move_back(s)
    outcome = RESTORED if t.at_key is not None else PURGED
    return (f"recover: RESTORING -> moves back, {outcome}", _write(t, outcome))


def _after_crash(s: State, cfg: Config) -> Step:
    """Recover, then the next run starts (the crashed run is over); invariant 4 is checked here."""
    label, t = _recover(s, cfg)
    t = _at(t, phase=len(_RUN_PHASES) - 1, ver=0, gen=0)
    return (label, replace(_next_phase(t, cfg), just_recovered=True))


_COLLECTOR: dict[str, StepFn] = {
    "q1": _q1_scan,
    "q2": _q2_intent,
    "q3": _q3_recheck,
    "q4": _q4_move,
    "q5": _q5_confirm,
    "p1": _p1_claim,
    "p2": _p2_recheck,
    "p3": _p3_delete,
    "p4": _p4_confirm,
    "p3r": _p3r_claim,
    "p4r": _p4r_move_back,
    "p5r": _p5r_confirm,
    "crashed": _after_crash,
}


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
    outcome = RESTORED if s.at_key is not None else PURGED  # PURGED: neither copy exists any more
    if cfg.mutation == "ensure-no-cas":
        t: State | None = _write(s, outcome)
    else:
        t = _cas(s, RESTORING, s.a.ver, outcome)
    if t is None:
        return ("writer A ensure confirm CAS fails -> reads again", _a(s, pc="w3"))
    if outcome == RESTORED:
        return ("writer A ensure confirms RESTORED, returns RESTORED", _a(t, pc="done", result=RESTORED))
    return ("writer A ensure finds no copy, returns GONE", _a(t, pc="reupload", result="GONE"))


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
    for fn in (_COLLECTOR.get(c.pc), _WRITER_A.get(s.a.pc), _WRITER_B.get(s.b_pc)):
        step = fn(s, cfg) if fn is not None else None
        if step is not None:
            out.append(step)
    return out


# ---------------------------------------------------------------- invariants


def _available_or_restorable(s: State) -> bool:
    """The object is at ``k``, or in the trash under an active entry (the purge re-check restores it)."""
    if s.at_key is not None:
        return True
    return s.trash is not None and s.entry is not None and s.entry.state not in TERMINAL


def finished(s: State) -> bool:
    """Every process has run to its end."""
    return s.collector.pc == "done" and s.a.pc == "done" and s.b_pc == "done"


def _settled(s: State, cfg: Config) -> str | None:
    """Why the journal disagrees with the store, or None (invariant 4)."""
    e = s.entry
    if e is None:
        return "stray trash copy without an entry" if s.trash is not None else None
    if e.state in IN_FLIGHT:
        return f"entry left in flight ({e.state})"
    if e.state == QUARANTINED:
        ok = s.trash is not None if cfg.mode == "move" else s.at_key is not None
        return None if ok else "QUARANTINED but the object is not where quarantine put it"
    if e.state == PURGED:
        ok = s.trash is None if cfg.mode == "move" else s.at_key != e.gen
        return None if ok else "PURGED but the quarantined object still exists"
    return None if s.at_key is not None else "RESTORED but nothing at k"


def violations(s: State, cfg: Config) -> list[tuple[str, str]]:
    """(invariant, explanation) for each invariant ``s`` violates.

    1. a writer that finished its protocol with a committed row finds the
       object at ``k``, or in the trash under an active entry (whose purge
       re-check will restore it); for writer B see ``Config.writer_b_protected``;
    2. once ensure answered PRESENT or RESTORED (or the writer uploaded again
       after GONE), the object stays at ``k`` in every later state;
    3. no entry version is both claimed by ensure's CAS and by purge's p1 CAS;
    4. right after recover, and when every process has finished, nothing is in
       flight and the journal agrees with the store (``_settled``).
    """
    out: list[tuple[str, str]] = []
    if s.a.pc == "done" and not _available_or_restorable(s):
        out.append((INV_REFERENCED, "writer A finished with a committed row, the object is gone"))
    if s.b_pc == "done" and not _available_or_restorable(s):
        out.append((INV_REFERENCED_B, "writer B committed its row, the object is gone"))
    if s.a.result in {"PRESENT", RESTORED, "REUPLOADED"} and s.at_key is None:
        out.append((INV_AVAILABLE, f"ensure returned {s.a.result} but k is empty now"))
    if both := s.claimed & s.purge_claimed:
        out.append((INV_CLAIMS, f"a claim and a purge both succeeded from version {min(both)}"))
    if s.just_recovered or finished(s):
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
) -> list[Config]:
    """The cross product of the given parameters."""
    return [
        Config(mode=m, crashes=c, grace=g, runs=runs, mutation=mutation)
        for m, c, g in itertools.product(modes, crashes, graces)
    ]


#: for each mutation: configurations in which it must be caught, with the invariant it breaks there
EXPECTED_CATCH: dict[str, list[tuple[Config, str]]] = {
    "no-purge-recheck": [(Config(mode="move", grace=True), INV_REFERENCED_B)],
    "no-quarantine-recheck": [(Config(mode="move"), INV_AVAILABLE)],
    "ensure-no-cas": [(Config(mode="move"), INV_CLAIMS), (Config(mode="mark"), INV_AVAILABLE)],
    "recover-forward-purging": [(Config(mode="move", crashes=1, grace=True), INV_REFERENCED_B)],
    "grace-from-intent": [(Config(mode="move", grace=True), INV_REFERENCED_B)],
}


def _print_result(r: Result, out: Callable[[str], None], *, verbose: bool) -> None:
    status = "OK" if r.ok else "VIOLATED: " + "; ".join(sorted(r.violations))
    out(f"{r.config.name():<60} states={r.states:>7,} transitions={r.transitions:>8,}  {status}")
    for cx in r.violations.values():
        out(cx.render())
    if r.limitations:
        if not r.config.grace:
            why = "with grace = 0 its w1..w2 can straddle a whole quarantine and purge"
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
    p.add_argument("--break", dest="mutation", choices=MUTATIONS, help="deliberately break the protocol")
    p.add_argument("-v", "--verbose", action="store_true", help="also print writer B's expected losses")
    args = p.parse_args(argv)
    graces = [g == "positive" for g in args.grace]
    failed = False
    for cfg in configurations(args.mode, args.crashes, graces, args.runs, args.mutation):
        r = explore(cfg)
        _print_result(r, print, verbose=args.verbose)
        failed = failed or not r.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
