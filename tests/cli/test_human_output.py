"""Human output for a person at 80 columns: tables that fit, a short run summary, one dry-run vocabulary."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli.runner import reclaim


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("human")
    built = reclaim("demo", str(directory / "demo"), cwd=directory)
    assert built.returncode == 0, built.stderr
    return directory / "demo" / "reclaim.toml"


def shown(demo: Path, *args: str) -> str:
    result = reclaim(*args, "-c", str(demo), cwd=demo.parent)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        assert len(line) <= 80, line
    assert not re.search(r"\b1 (objects|rows)\b", result.stdout), result.stdout
    return result.stdout


def test_status_fits_80_columns_without_truncated_headers(demo: Path) -> None:
    text = shown(demo, "status")
    assert "…" not in text, text
    for header in ("quarantined", "next purge", "in flight", "restored", "next expiry", "findings"):
        assert header in text


def test_runs_table_has_a_short_summary(demo: Path) -> None:
    text = shown(demo, "runs")
    assert "{" not in text, text  # no raw dict
    assert "'" not in text, text
    assert "quarantined 18 objects; archived 4 rows" in " ".join(text.split())


def test_runs_id_is_a_detail_view(demo: Path) -> None:
    text = shown(demo, "runs", "1")
    assert text.startswith("run 1: run, succeeded")
    for label in ("by ", "started ", "summary ", "quarantined:", "collections:"):
        assert label in text
    assert "18 objects (" in text


def test_one_dry_run_vocabulary(demo: Path) -> None:
    key = next(p for p in (demo.parent / "store" / "_trash").rglob("*") if p.is_file())
    single = str(key.relative_to(demo.parent / "store" / "_trash"))
    cases = [
        (["restore", "--run", "1", "--dry-run"], r"would restore 18 objects \([0-9.]+ KiB\)"),
        (["restore", single, "--store", "main", "--dry-run"], r"would restore 1 object \([0-9]+ B\)"),
        (["purge", "--dry-run"], r"would purge 0 objects \(0 B\)"),
        (["purge", "--dry-run", "--older-than", "0"], r"would purge 18 objects \([0-9.]+ KiB\)"),
        (["quarantine", "--dry-run"], r"would quarantine 0 objects \(0 B\)"),
        (["run", "--dry-run"], r"would quarantine 0 objects \(0 B\)"),
        (["run", "--dry-run"], r"would purge 0 objects \(0 B\)"),
    ]
    for args, pattern in cases:
        text = " ".join(shown(demo, *args).split())
        assert re.search(pattern, text), (args, text)
        assert "restored 1" not in text.replace("would restore", "")


def test_an_env_derived_store_url_reads_the_same_in_human_and_json_output(demo: Path, tmp_path: Path) -> None:
    """A store URL from the environment is no secret: printed as it is, the same in both outputs.

    (It used to be masked in ``--json`` and printed in clear by the human header; only secrets,
    such as a URL's password, are masked now, everywhere alike.)
    """
    text = demo.read_text(encoding="utf-8")
    url = re.search(r'^url = "(file://[^"]+)"', text, re.M)
    assert url is not None
    config = tmp_path / "reclaim.toml"
    catalog = f'\n[catalog]\nurl = "sqlite:///{demo.parent}/reclaim-catalog.sqlite"\n'
    config.write_text(text.replace(url.group(0), 'url = "${DEMO_STORE_URL}"') + catalog, encoding="utf-8")
    env = {**os.environ, "COLUMNS": "200", "DEMO_STORE_URL": url.group(1)}
    for command in (["scan"], ["check"], ["quarantine", "--dry-run"]):
        result = subprocess.run(
            [sys.executable, "-m", "reclaim", *command, "-c", str(config)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "store main" in result.stdout
        as_json = subprocess.run(
            [sys.executable, "-m", "reclaim", *command, "--json", "-c", str(config)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert as_json.returncode == 0, as_json.stderr
        assert url.group(1) in "".join(result.stdout.split()), command  # wrapping undone
        assert url.group(1) in as_json.stdout, command
