"""The lifecycle model checker (model/lifecycle_model.py): the protocol holds, every breakage is caught.

The model is loaded from its file: it is a standalone script beside the
package, not part of it, so that it cannot share a bug with the code it checks.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _load_model() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "model" / "lifecycle_model.py"
    spec = importlib.util.spec_from_file_location("lifecycle_model", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


lm = _load_model()

CONFIGS = lm.configurations()
DEEP_CONFIGS = lm.configurations(crashes=(2,), runs=3)
MUTATION_CASES = [(m, cfg, inv) for m, cases in lm.EXPECTED_CATCH.items() for cfg, inv in cases]


def _explain(result: Any) -> str:
    return "\n".join(cx.render() for cx in result.violations.values())


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name())
def test_protocol_holds_in_every_configuration(cfg: Any) -> None:
    result = lm.explore(cfg)
    assert result.ok, _explain(result)
    assert result.states > 100
    assert result.transitions > result.states


@pytest.mark.parametrize("cfg", DEEP_CONFIGS, ids=lambda c: c.name())
def test_protocol_holds_with_more_crashes_and_runs(cfg: Any) -> None:
    result = lm.explore(cfg)
    assert result.ok, _explain(result)
    assert result.states > 10_000


def test_every_step_of_the_protocol_is_reached() -> None:
    """Guards against a vacuous model: each branch of the protocol happens in some interleaving."""
    fired: set[str] = set()
    for cfg in CONFIGS:
        fired |= lm.explore(cfg).fired
    expected = {
        "collector q3 re-check: referenced -> RESTORED",
        "collector q4 moves k -> trash",
        "collector q5 confirms QUARANTINED (grace starts)",
        "collector p1 CAS QUARANTINED -> PURGING",
        "collector p2 re-check: referenced -> restore",
        "collector p2 ETag changed since quarantine -> RESTORED",
        "collector p3 deletes the trash copy",
        "collector p3 deletes k",
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
    """grace = 0 (documented) and mark mode (the object stays at k until the delete) lose B's object."""
    result = lm.explore(cfg)
    if cfg.writer_b_protected:
        assert not result.limitations
    else:
        cx = result.limitations[lm.INV_REFERENCED_B]
        assert cx.steps[-1] == "writer B w2 commits its row" or "deletes" in cx.steps[-1]
        assert lm.INV_REFERENCED_B not in result.violations


@pytest.mark.parametrize(("mutation", "cfg", "invariant"), MUTATION_CASES, ids=lambda v: str(v))
def test_each_mutation_is_caught(mutation: str, cfg: Any, invariant: str) -> None:
    result = lm.explore(replace(cfg, mutation=mutation))
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


def test_every_mutation_has_an_expected_catch() -> None:
    assert set(lm.EXPECTED_CATCH) == set(lm.MUTATIONS)


def test_cli_reports_ok_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert lm.main(["--mode", "move", "--crashes", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count(" OK") == 2
    assert "states=" in out
    assert "transitions=" in out


def test_cli_prints_the_counterexample_and_exits_nonzero(capsys: pytest.CaptureFixture[str]) -> None:
    assert lm.main(["--mode", "move", "--crashes", "0", "--break", "no-quarantine-recheck"]) == 1
    out = capsys.readouterr().out
    assert "VIOLATED: 2 ensure's answer holds" in out
    assert "   1. " in out
    assert "returns PRESENT" in out
    assert "moves k -> trash" in out
