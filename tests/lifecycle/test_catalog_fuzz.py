"""Fuzz: a catalog edited into impossible values never gives a traceback or loses a live object.

A real world (an SQLite app database with referenced objects and abandoned
upload rows, a local store, an SQLite catalog after one ``reclaim run``:
quarantined orphans, archived rows, the audit log) is copied for each example;
Hypothesis writes bad values into catalog rows directly with SQL (unknown
states, dates that are not dates, JSON that is not JSON, keys outside the
store, trash keys naming live objects, NULLs); then the read-only and the
mutating commands run through the CLI. Each must end with a documented exit
code (never an unexpected error), and every referenced object must still be
there, byte for byte (issue 10, findings 5, 8 and 9).
"""

from __future__ import annotations

import gc
import hashlib
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import reclaim
from reclaim.cli.app import app

from .archive import make_archive

LIVE = [f"blobs/live/{i}" for i in range(4)]
ORPHANS = [f"blobs/orphan/{i}" for i in range(4)]
UPLOADS = """
[collections.uploads]
database = "app"
table = "uploads"
age_column = "created"
min_age = "7d"
retention = "30d"
"""
#: what a command may end with: success, a documented error (README's exit code table), findings
DOCUMENTED = {0, 3, 4, 5, 6, 7, 8, 9, 11, 12}
COMMANDS = [
    ["status"],
    ["check"],
    ["runs"],
    ["runs", "1"],
    ["scan"],
    ["lock"],
    ["recover"],
    ["purge"],
    ["restore", "--store", "main", "--since", "400d"],
    ["restore", "--rows", "--since", "400d"],
    ["run"],
    ["status", "--json"],
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world")
    db_url = f"sqlite:///{root / 'app.sqlite'}"
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE uploads (id INTEGER PRIMARY KEY, blob VARCHAR(200), created DATETIME)"
        )
        old = (datetime.now(UTC) - timedelta(days=30)).replace(tzinfo=None)
        for i in range(3):
            conn.execute(
                sa.text("INSERT INTO uploads VALUES (:i, :b, :c)"), {"i": i, "b": f"u/{i}", "c": old}
            )
    engine.dispose()
    archive = make_archive(root, db_url, grace="7d", extra=UPLOADS)
    for key in LIVE + ORPHANS:
        archive.put(key, key.encode() * 3)
    for key in LIVE:
        archive.reference(key)
    report = reclaim.run(archive.config_path)
    assert report.quarantined[0].quarantined.count == len(ORPHANS)
    assert report.collections[0].archived == 3
    archive.dispose()
    return root


def digests(root: Path) -> dict[str, str]:
    return {key: hashlib.sha256((root / "store" / key).read_bytes()).hexdigest() for key in LIVE}


TEXT_VALUES = st.sampled_from(
    [
        "BOGUS",
        "yesterday",
        "",
        "not json {",
        "[]",
        "null",
        '{"reported": 5}',
        '{"id": "x"}',
        "quarantined",
        "PURGING",
        "RESTORING",
        "QUARANTINING",
        "QUARANTINED",
        "PURGED",
        "RESTORED",
        "ARCHIVING",
        "../outside",
        "/etc/passwd",
        "_trash/blobs/x",
        "x" * 2000,
        "9999-99-99 99:99:99",
        "2026-01-01 00:00:00",
        "-1",
        "nan",
        "move",
        "mark",
        "versioned",
        *LIVE,
        *("_trash/" + key for key in LIVE),
    ]
)
VALUES = st.one_of(TEXT_VALUES, st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True))
COLUMNS = {
    "reclaim_objects": [
        "key",
        "state",
        "version",
        "mode",
        "trash_key",
        "size",
        "mtime",
        "etag",
        "run_id",
        "created_at",
        "updated_at",
        "due_at",
        "note",
        "mtime_epoch",
        "version_id",
    ],
    "reclaim_runs": ["command", "status", "dry_run", "started_at", "finished_at", "pid", "options", "counts"],
    "reclaim_rows": ["collection", "table_name", "pk", "row", "run_id", "archived_at", "expires_at", "state"],
    "reclaim_row_refs": ["row_id", "table_name", "selector", "value"],
    "reclaim_lease": ["holder", "pid", "token", "run_id", "acquired_at", "heartbeat_at", "expires_at"],
}
CORRUPTION = st.sampled_from(sorted(COLUMNS)).flatmap(
    lambda table: st.tuples(
        st.just(table), st.sampled_from(COLUMNS[table]), VALUES, st.sampled_from(["first", "all"])
    )
)


def corrupt(catalog: str, table: str, column: str, value: object, which: str) -> None:
    engine = sa.create_engine(catalog)
    pk = "name" if table == "reclaim_lease" else "id"
    where = "" if which == "all" else f" WHERE {pk} = (SELECT MIN({pk}) FROM {table})"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'UPDATE {table} SET "{column}" = :v{where}'), {"v": value})
    except sa.exc.IntegrityError:
        pass  # a NOT NULL the database itself enforces: that corruption cannot exist
    finally:
        engine.dispose()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(corruptions=st.lists(CORRUPTION, min_size=1, max_size=3), commands=st.permutations(COMMANDS))
def test_a_corrupt_catalog_never_gives_a_traceback_nor_loses_a_live_object(
    template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    corruptions: list[tuple[str, str, object, str]],
    commands: list[list[str]],
) -> None:
    root = tmp_path_factory.mktemp("example")
    shutil.copytree(template, root, dirs_exist_ok=True)
    config = root / "reclaim.toml"
    config.write_text(config.read_text().replace(str(template), str(root)))
    before = digests(root)
    for table, column, value, which in corruptions:
        corrupt(f"sqlite:///{root / 'catalog.sqlite'}", table, column, value, which)
    runner = CliRunner()
    for command in commands[:6]:
        result = runner.invoke(app, [*command, "--config", str(config)])
        assert result.exit_code in DOCUMENTED, (command, corruptions, result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            command,
            corruptions,
            result.exception,
        )
        assert digests(root) == before, (command, corruptions)
        # in one process, a failed command's suspended catalog cursors live on in its traceback
        # (a CLI process ends instead): collect them, so the next command does not wait on them
        del result
        gc.collect()
    shutil.rmtree(root)


def copy_world(template: Path, root: Path) -> Path:
    shutil.copytree(template, root, dirs_exist_ok=True)
    config = root / "reclaim.toml"
    config.write_text(config.read_text().replace(str(template), str(root)))
    return config


# the cases of issue 10 (findings 8 and 9): each command ends in a catalog error (exit 6) naming the
# table and the row, or, where acting on the other rows is safe, skips the bad row and says so
OK, CATALOG = {0}, {6}
CASES: dict[str, tuple[str, dict[str, set[int]], str]] = {
    "runs.counts not JSON": (
        "UPDATE reclaim_runs SET counts = 'not json {'",
        {"status": CATALOG, "runs": CATALOG, "check": OK, "purge": OK, "run": OK},
        "(table runs)",
    ),
    "every entry BOGUS": (
        "UPDATE reclaim_objects SET state = 'BOGUS'",
        {"status": OK, "check --fail-on-findings": {5}, "purge": OK, "run": OK | CATALOG, "runs": OK},
        "not a valid State",
    ),
    "due_at yesterday": (
        "UPDATE reclaim_objects SET due_at = 'yesterday'",
        {"status": CATALOG, "check": OK, "purge": OK, "run": OK, "runs": OK},
        "impossible value",
    ),
    "key with ..": (
        "UPDATE reclaim_objects SET key = '../outside', due_at = '2000-01-01 00:00:00.000000'",
        {"status": OK, "purge": OK, "run": OK, "check --fail-on-findings": {5}},
        "",
    ),
    "archived JSON garbage": (
        "UPDATE reclaim_rows SET row = 'garbage'",
        {"restore --rows --since 400d": CATALOG, "status": OK, "run": OK},
        "(table rows",
    ),
    "archived primary key garbage": (
        "UPDATE reclaim_rows SET pk = 'garbage'",
        {"restore --rows --since 400d": CATALOG, "status": OK, "run": OK},
        "primary key",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_catalog_values_of_issue_10(template: Path, tmp_path: Path, case: str) -> None:
    statement, expected, message = CASES[case]
    config = copy_world(template, tmp_path)
    before = digests(tmp_path)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql(statement)
    engine.dispose()
    runner = CliRunner()
    for command, codes in expected.items():
        result = runner.invoke(app, [*command.split(), "--config", str(config)])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            command,
            result.exception,
        )
        assert result.exit_code in codes, (command, result.output)
        if result.exit_code == 6:
            assert message in result.output, (command, result.output)
        assert digests(tmp_path) == before
