"""A usage error (unknown option, bad value, unknown command) under ``--json`` is JSON on stdout too.

Click's message still goes to stderr; the document on stdout is the one every
error has under ``--json`` (``{"error": {"type", "message", "exit_code", ...}}``),
with exit code 2, so a job that keeps stdout keeps why its command never ran.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli.runner import reclaim


def _error(done: Any) -> dict[str, Any]:
    document = json.loads(done.stdout)
    assert set(document) == {"error"}, document
    error: dict[str, Any] = document["error"]
    assert error["exit_code"] == done.returncode == 2
    assert error["message"]
    assert "Error" in done.stderr  # the human message is still there
    return error


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        (["scan", "--json", "--bogus"], "--bogus", "No such option: --bogus"),
        (["quarantine", "--max-fraction", "2", "--json"], "--max-fraction", "--max-fraction"),
        (["runs", "--json", "--limit", "0"], "--limit", "--limit"),
        (["restore", "--run", "abc", "--json"], "--run", "--run"),
        (["purge", "--json", "--dry-run", "--store"], "--store", "--store"),
        (["check", "--show", "-1", "--json"], "--show", "--show"),
    ],
)
def test_a_usage_error_of_a_command_is_a_json_document(
    tmp_path: Path, args: list[str], field: str, message: str
) -> None:
    error = _error(reclaim(*args, cwd=tmp_path))
    assert error["type"] == "UsageError"
    assert error["field"] == field
    assert message in error["message"]


def test_an_unknown_command_and_a_bad_global_option_are_json_documents(tmp_path: Path) -> None:
    unknown = _error(reclaim("frobnicate", "--json", cwd=tmp_path))
    assert unknown["type"] == "UsageError"
    assert "frobnicate" in unknown["message"]
    misplaced = _error(reclaim("--json", "status", cwd=tmp_path))  # --json belongs to the command
    assert misplaced["field"] == "--json"
    interval = reclaim("--progress-interval", "soon", "scan", "--json", cwd=tmp_path)
    document = json.loads(interval.stdout)
    assert interval.returncode == 2
    assert document["error"]["type"] == "ConfigError"
    assert document["error"]["field"] == "--progress-interval"


def test_without_json_a_usage_error_is_text_only(tmp_path: Path) -> None:
    done = reclaim("scan", "--bogus", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "No such option: --bogus" in done.stderr


def test_json_with_a_good_command_line_is_unchanged(tmp_path: Path) -> None:
    done = reclaim("lock", "--json", "--config", str(tmp_path / "missing.toml"), cwd=tmp_path)
    document = json.loads(done.stdout)
    assert done.returncode == document["error"]["exit_code"] == 2  # a configuration error, as before
    assert document["error"]["type"] == "ConfigError"
