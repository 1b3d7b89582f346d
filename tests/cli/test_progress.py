"""Progress as an operator sees it: log lines off a terminal, bars on one, never in ``--json`` stdout.

Real ``python -m reclaim`` processes on a real archive (SQLite + a local
directory). ``--progress-interval 0`` logs every update, so the lines show
how each step went; they are checked on what they count, never on timing.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

import reclaim
from cli.runner import reclaim as cli
from lifecycle.archive import Archive, make_archive

N = 2500
REFERENCED = len(range(0, N, 3))
CANDIDATES = N - REFERENCED

#: ``… INFO reclaim.progress: scan main: 2,000/~2,500 listed (80%), 41,200/s, about 1 s left``
LINE = re.compile(
    r"INFO reclaim\.progress: (?P<phase>[a-z ]+?) (?P<subject>\S+): (?P<done>[\d,]+)"
    r"(?:/(?P<estimated>~?)(?P<total>[\d,]+))? (?P<unit>[a-z ]+?)"
    r"(?: \((?P<percent>\d+)%\))?(?: in (?P<took>[^,]+))?(?:, (?P<rate>[\d,.]+)/s)?"
    r"(?:, about (?P<left>.+) left)?$"
)


def _number(text: str | None) -> int | None:
    return None if text is None else int(text.replace(",", ""))


def _lines(stderr: str, phase: str, subject: str = "main") -> list[re.Match[str]]:
    found = [m for line in stderr.splitlines() if (m := LINE.search(line))]
    assert found, stderr
    return [m for m in found if (m["phase"], m["subject"]) == (phase, subject)]


def _assert_step(lines: list[re.Match[str]], total: int, *, estimated: bool = False) -> None:
    """Every line of one step: done never goes back; the last says it is over, done == total."""
    assert lines
    dones = [_number(m["done"]) for m in lines]
    assert dones == sorted(dones)
    for m in lines[:-1]:
        assert m["took"] is None
        if m["total"] is not None:
            assert _number(m["total"]) == total or estimated
            assert m["percent"] is not None
    last = lines[-1]
    assert last["took"] is not None  # "… in 0.3 s"
    assert (_number(last["done"]), _number(last["total"])) == (total, total)


@pytest.fixture
def archive(tmp_path: Path, sqlite_url: str) -> Archive:
    archive = make_archive(tmp_path, sqlite_url, grace="0")
    for i in range(N):
        archive.put(f"blobs/{i:05d}")
        if i % 3 == 0:
            archive.reference(f"blobs/{i:05d}")
    return archive


def _run(archive: Archive, *args: str) -> subprocess.CompletedProcess[str]:
    done = cli(
        "--progress-interval",
        "0",
        *args,
        "--config",
        str(archive.config_path),
        cwd=archive.config_path.parent,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_scan_quarantine_purge_log_progress_lines_off_a_terminal(archive: Archive) -> None:
    first = _run(archive, "quarantine")
    listing = _lines(first.stderr, "scan")
    assert all(m["total"] is None for m in listing[:-1])  # no run listed the store before
    _assert_step(listing, N)
    assert {m["unit"] for m in listing} == {"listed"}
    _assert_step(_lines(first.stderr, "quarantine"), CANDIDATES)
    assert _number(_lines(first.stderr, "quarantine")[0]["total"]) == CANDIDATES  # known from the scan

    scan = _run(archive, "scan")
    listing = _lines(scan.stderr, "scan")
    assert listing[0]["estimated"] == "~"
    assert _number(listing[0]["total"]) == N  # the last run's listing, an estimate
    assert (_number(listing[-1]["done"]), _number(listing[-1]["total"])) == (REFERENCED, REFERENCED)

    purge = _run(archive, "purge")
    _assert_step(_lines(purge.stderr, "plan purge"), CANDIDATES)
    purged = _lines(purge.stderr, "purge")
    assert all(_number(m["total"]) == CANDIDATES for m in purged)
    _assert_step(purged, CANDIDATES)

    check = _run(archive, "check")
    _assert_step(_lines(check.stderr, "check"), REFERENCED, estimated=True)


def test_restore_shows_its_progress(archive: Archive) -> None:
    _run(archive, "quarantine")
    restore = _run(archive, "restore", "--store", "main", "--since", "1d")
    lines = _lines(restore.stderr, "restore")
    assert _number(lines[0]["total"]) == CANDIDATES
    _assert_step(lines, CANDIDATES)
    assert f"restored {CANDIDATES:,} objects" in restore.stdout


def test_a_cycle_and_a_restore_of_rows_show_every_step(tmp_path: Path) -> None:
    demo = reclaim.sample.build_demo_archive(tmp_path / "demo")
    reclaim.init(demo.config_path)
    config = str(demo.config_path)
    run = cli("--progress-interval", "0", "run", "--config", config, "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    cycle = json.loads(run.stdout)
    _assert_step(_lines(run.stderr, "collect", "uploads"), demo.old_uploads)
    _assert_step(_lines(run.stderr, "quarantine"), cycle["scans"][0]["candidates"]["count"])
    rows = cli(
        "--progress-interval",
        "0",
        "restore",
        "--rows",
        "--run",
        str(cycle["run_id"]),
        "--config",
        config,
        cwd=tmp_path,
    )
    assert rows.returncode == 0, rows.stderr
    lines = _lines(rows.stderr, "restore", "uploads")
    assert {m["unit"] for m in lines} == {"rows"}
    _assert_step(lines, demo.old_uploads)


def test_a_long_interval_logs_one_line_per_step_and_no_progress_none(archive: Archive) -> None:
    config = str(archive.config_path)
    done = cli("--progress-interval", "1d", "quarantine", "--config", config, cwd=archive.config_path.parent)
    assert done.returncode == 0, done.stderr
    assert [
        (m["phase"], m["took"] is not None)
        for m in _lines(done.stderr, "scan") + _lines(done.stderr, "quarantine")
    ] == [
        ("scan", True),
        ("quarantine", True),
    ]
    quiet = cli(
        "--no-progress", "check", "--config", str(archive.config_path), cwd=archive.config_path.parent
    )
    assert quiet.returncode == 0, quiet.stderr
    assert "reclaim.progress" not in quiet.stderr
    env_quiet = subprocess.run(
        [sys.executable, "-m", "reclaim", "check", "--config", str(archive.config_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "RECLAIM_NO_PROGRESS": "1"},
        timeout=120,
        check=False,
    )
    assert env_quiet.returncode == 0, env_quiet.stderr
    assert "reclaim.progress" not in env_quiet.stderr


def _on_a_terminal(archive: Archive, *args: str) -> tuple[int, str, str]:
    """Run reclaim with stderr on a real (pseudo-)terminal and stdout on a pipe: exit code, stdout, screen."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "reclaim", *args, "--config", str(archive.config_path)],
        stdout=subprocess.PIPE,
        stderr=terminal,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(terminal)
    drawn = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process is done with it
            break
        if not chunk:
            break
        drawn += chunk
    stdout, _ = process.communicate(timeout=120)
    os.close(controller)
    return process.returncode, stdout.decode(), drawn.decode("utf-8", "replace")


def test_json_stdout_is_clean_of_progress_off_and_on_a_terminal(archive: Archive) -> None:
    piped = _run(archive, "quarantine", "--json")
    assert json.loads(piped.stdout)["quarantined"][0]["quarantined"]["count"] == CANDIDATES
    assert _lines(piped.stderr, "quarantine")  # the progress went to stderr

    code, stdout, screen = _on_a_terminal(archive, "restore", "--store", "main", "--since", "1d", "--json")
    assert code == 0, screen
    assert json.loads(stdout)["restored"]["main"]["restored"] == CANDIDATES
    assert "restore main" in screen
    assert f"{CANDIDATES:,}/{CANDIDATES:,} objects in" in screen
    assert "reclaim.progress" not in screen  # bars, not log lines

    # an error while the bars are drawn: its JSON document still reaches stdout
    code, stdout, screen = _on_a_terminal(archive, "quarantine", "--max-fraction", "0.1", "--json")
    assert code == 7, screen
    assert json.loads(stdout)["error"]["type"] == "UnsafeToProceed"
    assert "scan main" in screen
