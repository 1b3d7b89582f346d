"""Every verb, every failure it can meet: what escapes is a ReclaimError with a documented exit code.

Each failure is made for real (a config that does not parse, a catalog file
removed or left behind by an older version, a reference database that refuses
connections, a store directory gone, a journal row edited by hand, a lease
another collector holds), and every verb of the API is called in it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import reclaim
from lifecycle.archive import make_archive
from reclaim.catalog import Leases, open_catalog
from reclaim.errors import ReclaimError

#: the exit codes the README documents, by error class
DOCUMENTED = {
    "ConfigError": 2,
    "SourceError": 3,
    "UnorderedSource": 3,
    "CollectionError": 3,
    "StoreError": 4,
    "CatalogError": 6,
    "CorruptRow": 6,
    "UnsafeToProceed": 7,
    "UnknownItem": 8,
    "RowConflict": 9,
    "LockHeld": 11,
    "LeaseLost": 12,
    "PlanSpent": 1,
}

Verb = Callable[[Path], Any]

VERBS: dict[str, Verb] = {
    "scan": lambda p: reclaim.scan(p),
    "check": lambda p: reclaim.check(p),
    "quarantine": lambda p: reclaim.quarantine(p),
    "quarantine --dry-run": lambda p: reclaim.quarantine(p, dry_run=True),
    "purge": lambda p: reclaim.purge(p),
    "purge --dry-run": lambda p: reclaim.purge(p, dry_run=True),
    "restore": lambda p: reclaim.restore(p, keys=["orphan/0"], store="main"),
    "restore --run": lambda p: reclaim.restore(p, run_id=99_999),
    "restore_rows": lambda p: reclaim.restore_rows(p, collection="nope"),
    "run": lambda p: reclaim.run(p),
    "run --dry-run": lambda p: reclaim.run(p, dry_run=True),
    "recover": lambda p: reclaim.recover(p),
    "status": lambda p: reclaim.status(p),
    "runs": lambda p: reclaim.runs(p, run_id=99_999),
    "lock": lambda p: reclaim.lock(p),
    "ensure": lambda p: reclaim.ensure(p, "main", "orphan/0", timeout=5),
}


def _bad_toml(a: Any) -> None:
    a.config_path.write_text(a.config_path.read_text() + "\n[stores.main\n")


def _bad_value(a: Any) -> None:
    a.config_path.write_text(a.config_path.read_text().replace('grace = "0"', 'grace = "soon"'))


def _no_catalog(a: Any) -> None:
    (a.config_path.parent / "catalog.sqlite").unlink()


def _old_catalog(a: Any) -> None:
    engine = sa.create_engine(f"sqlite:///{a.config_path.parent / 'catalog.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE reclaim_alembic_version SET version_num = '0001'")
    engine.dispose()


def _database_down(a: Any) -> None:
    text = a.config_path.read_text().replace(a.db_url, "postgresql+psycopg://postgres@127.0.0.1:9/none")
    a.config_path.write_text(text)


def _store_gone(a: Any) -> None:
    shutil.rmtree(a.store_url.removeprefix("file://"))


def _corrupt_journal(a: Any) -> None:
    reclaim.quarantine(a.config_path, grace=None)
    catalog = open_catalog(a.config.catalog)
    try:
        with catalog.begin() as conn:
            conn.exec_driver_sql("UPDATE reclaim_objects SET size = 'many'")
    finally:
        catalog.dispose()


FAILURES: dict[str, Callable[[Any], None]] = {
    "config does not parse": _bad_toml,
    "config value is wrong": _bad_value,
    "catalog file missing": _no_catalog,
    "catalog from an older version": _old_catalog,
    "reference database refuses connections": _database_down,
    "store directory gone": _store_gone,
    "journal row edited by hand": _corrupt_journal,
}


EVERY = set(VERBS)
CATALOG = EVERY - {"scan", "check"}
#: the verbs that must fail in each failure, and as what
MUST_FAIL: dict[str, tuple[set[str], str]] = {
    "config does not parse": (EVERY, "ConfigError"),
    "config value is wrong": (EVERY, "ConfigError"),
    "catalog file missing": (CATALOG, "CatalogError"),
    "catalog from an older version": (CATALOG, "CatalogError"),
    "reference database refuses connections": ({"scan", "check", "quarantine", "run"}, "SourceError"),
    "store directory gone": ({"scan", "quarantine", "quarantine --dry-run", "run"}, "StoreError"),
    "journal row edited by hand": ({"purge", "restore", "run"}, "CorruptRow"),
}


@pytest.mark.parametrize("verb", sorted(VERBS))
@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_only_reclaim_errors_escape(tmp_path: Path, verb: str, failure: str) -> None:
    a = make_archive(tmp_path, f"sqlite:///{tmp_path / 'app.sqlite'}")
    for i in range(3):
        a.put(f"orphan/{i}")
    FAILURES[failure](a)
    must, expected = MUST_FAIL[failure]
    try:
        VERBS[verb](a.config_path)
    except ReclaimError as exc:
        name = _documented(exc)
        failed_as = name
    else:
        failed_as = None
    if verb in must:
        assert failed_as == expected, f"{verb} ended in {failed_as} although {failure}"
    # elsewhere going on is right: the failure does not concern the verb (lock with a store gone)


def test_a_lease_held_by_another_collector_is_lock_held(tmp_path: Path) -> None:
    a = make_archive(tmp_path, f"sqlite:///{tmp_path / 'app.sqlite'}")
    catalog = open_catalog(a.config.catalog)
    try:
        with Leases(catalog).keep("someone-else"):
            for verb in ("quarantine", "purge", "run", "recover", "restore"):
                with pytest.raises(ReclaimError) as caught:
                    VERBS[verb](a.config_path)
                name = _documented(caught.value)
                assert name in {"LockHeld", "UnknownItem"}, verb  # restore refuses the unknown key first
    finally:
        catalog.dispose()


def _documented(exc: ReclaimError) -> str:
    name = type(exc).__name__
    assert name in DOCUMENTED, f"{name} is not in the README's exit code table"
    assert exc.exit_code == DOCUMENTED[name]
    assert str(exc).strip()
    for value in exc.about().values():
        assert isinstance(value, str)
    return name
