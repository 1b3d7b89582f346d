"""The lifecycle model checker (model/lifecycle_model.py): the protocol holds, every breakage is caught.

The model is loaded from its file: it is a standalone script beside the
package, not part of it, so that it cannot share a bug with the code it checks.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _load_model() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "model" / "lifecycle_model.py"
    spec = importlib.util.spec_from_file_location("lifecycle_model", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


lm = _load_model()

CONFIGS = lm.configurations()  # modes x crashes 0/1 x pauses 0/1 x grace
DEEP_CONFIGS = lm.configurations(crashes=(2,), runs=3, pauses=(0,))
MUTATION_CASES = [(m, cfg, inv) for m, cases in lm.EXPECTED_CATCH.items() for cfg, inv in cases]

#: each configuration is explored once per test session (several tests read the same result)
explore = functools.cache(lm.explore)


HOLDING_CONFIGS = CONFIGS


def _explain(result: Any) -> str:
    return "\n".join(cx.render() for cx in result.violations.values())


@pytest.mark.parametrize("cfg", HOLDING_CONFIGS, ids=lambda c: c.name())
def test_protocol_holds_in_every_configuration(cfg: Any) -> None:
    result = explore(cfg)
    assert result.ok, _explain(result)
    assert result.states > 100
    assert result.transitions > result.states


@pytest.mark.parametrize("cfg", DEEP_CONFIGS, ids=lambda c: c.name())
def test_protocol_holds_with_more_crashes_and_runs(cfg: Any) -> None:
    result = explore(cfg)
    assert result.ok, _explain(result)
    assert result.states > 10_000


def test_every_step_of_the_protocol_is_reached() -> None:
    """Guards against a vacuous model: each branch of the protocol happens in some interleaving."""
    fired: set[str] = set()
    for cfg in CONFIGS:
        fired |= explore(cfg).fired
    expected = {
        "collector q3 re-check: referenced -> RESTORED",
        "collector q4m moves k -> trash",
        "collector q5 confirms QUARANTINED (grace starts)",
        "collector p1 CAS QUARANTINED -> PURGING",
        "collector p2 re-check: referenced -> restore",
        "collector p2 ETag changed since quarantine -> RESTORED",
        "collector p3m deletes the trash copy",
        "collector p3m stages k -> trash",
        "collector p3x deletes the staged copy",
        "collector is paused past its lease before q4m",
        "collector is paused past its lease before p3m",
        "collector is paused past its lease before p3x",
        "collector is paused past its lease before p2 (resumes only to stop)",
        "stale collector p4r moves trash -> k",
        "stale collector p5r: journal write refused (fencing token) -> stops",
        "new holder takes the lease over; recover: QUARANTINING, not moved -> RESTORED",
        "new holder takes the lease over; recover: QUARANTINING, moved -> QUARANTINED (grace starts now)",
        "new holder takes the lease over; recover: PURGING, object present -> QUARANTINED (re-check redone)",
        "new holder takes the lease over; recover: PURGING, staged copy moved back -> QUARANTINED",
        "stale collector q4m moves k -> trash",
        "stale collector q4c lease lost -> moves trash -> k back, stops",
        "stale collector p3m stages k -> trash",
        "stale collector p3c lease lost -> moves trash -> k back, stops",
        "stale collector p3c lease lost -> nothing to move back (k taken or trash empty), stops",
        "stale collector p3m deletes the trash copy",
        "stale collector p3x deletes the staged copy",
        "writer A ensure verifies: k missing -> PURGED, returns GONE",
        "writer A ensure verifies: k replaced since quarantine -> RESTORED, returns GONE",
        "writer A ensure verifies: k holds the quarantined object -> RESTORED, returns RESTORED",
        "collector p4r moves trash -> k",
        "collector p5r CAS RESTORING -> RESTORED",
        "recover: QUARANTINING, moved -> QUARANTINED (grace starts now)",
        "recover: QUARANTINING, not moved -> RESTORED",
        "recover: PURGING, object present -> QUARANTINED (re-check redone)",
        "recover: PURGING, object gone -> PURGED",
        "recover: RESTORING -> moves back, RESTORED",
        "writer A ensure claims -> RESTORING",
        "writer A ensure claim CAS fails -> reads again",
        "writer A ensure confirms RESTORED, returns RESTORED",
        "writer A ensure: k exists, returns PRESENT",
        "writer A ensure: k missing, returns GONE",
        "writer B w1: k missing -> uploads",
    }
    assert expected <= fired, sorted(expected - fired)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name())
def test_writer_without_ensure_is_safe_only_where_claimed(cfg: Any) -> None:
    """grace = 0 (documented), mark mode (the object stays at k until the delete) and a paused collector
    (its checked delete hits a newer quarantine's trash copy) lose B's object."""
    result = explore(cfg)
    if cfg.writer_b_protected:
        assert not result.limitations
    else:
        cx = result.limitations[lm.INV_REFERENCED_B]
        assert cx.steps[-1] == "writer B w2 commits its row" or "deletes" in cx.steps[-1]
        assert lm.INV_REFERENCED_B not in result.violations


@pytest.mark.parametrize(("mutation", "cfg", "invariant"), MUTATION_CASES, ids=lambda v: str(v))
def test_each_mutation_is_caught(mutation: str, cfg: Any, invariant: str) -> None:
    result = explore(replace(cfg, mutation=mutation))
    assert invariant in result.violations, f"{mutation}: found only {sorted(result.violations)}"
    cx = result.violations[invariant]
    # the trace is a real path: replaying its labels from the initial state reaches the violating state
    state = lm.State()
    for label in cx.steps:
        nxt = dict(lm.successors(state, result.config))
        assert label in nxt, f"step {label!r} is not enabled"
        state = nxt[label]
    assert state == cx.final
    assert invariant in {inv for inv, _ in lm.violations(state, result.config)}


def test_lease_mutations_need_a_pause() -> None:
    """Without a pause the lease mutations change nothing: what catches them is the paused collector."""
    for mutation in ("no-self-fencing", "no-undo", "takeover-at-expiry"):
        for mode in lm.MODES:
            result = explore(lm.Config(mode=mode, pauses=0, mutation=mutation))
            assert result.ok, f"{mutation} {mode}: {sorted(result.violations)}"


def test_s3_window_is_real() -> None:
    """mark mode on S3 (no staging): a delete checked before the pause hits k after ensure's RESTORED.

    The README documents this window ("use move mode or a versioned bucket");
    the model shows it exists and that staging (the default) closes it.
    """
    cfg = lm.Config(mode="mark", pauses=1, staging=False)
    result = explore(cfg)
    cx = result.violations[lm.INV_AVAILABLE]
    assert cx.steps[-1] == "stale collector p3m deletes k"
    assert any("returns RESTORED" in step for step in cx.steps)
    assert explore(replace(cfg, staging=True)).ok


def test_every_mutation_has_an_expected_catch() -> None:
    assert set(lm.EXPECTED_CATCH) == set(lm.MUTATIONS)


def test_cli_reports_ok_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert lm.main(["--mode", "move", "--crashes", "0"]) == 0
    out = capsys.readouterr().out
    assert out.count(" OK") == 4  # pauses 0 and 1, grace > 0 and 0
    assert "states=" in out
    assert "transitions=" in out


def test_cli_prints_the_counterexample_and_exits_nonzero(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--mode", "move", "--crashes", "0", "--pauses", "0", "--break", "no-quarantine-recheck"]
    assert lm.main(argv) == 1
    out = capsys.readouterr().out
    assert "VIOLATED: 2 ensure's answer holds" in out
    assert "   1. " in out
    assert "returns PRESENT" in out
    assert "moves k -> trash" in out


def test_cli_shows_a_paused_collector_without_self_fencing(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--mode", "mark", "--crashes", "0", "--pauses", "1", "--grace", "0", "--break", "no-self-fencing"]
    assert lm.main(argv) == 1
    out = capsys.readouterr().out
    assert "collector is paused past its lease" in out
    assert "new holder takes the lease over" in out
    assert "returns RESTORED" in out
