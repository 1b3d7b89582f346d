"""reclaim.datajoint against dj.gc on identical copies of one DataJoint 2 pipeline.

The pipeline is the tests' (``tests/datajoint/djpipeline.py``), built by the
real ``datajoint`` package on PostgreSQL: two schemas sharing store ``main``,
hash-addressed blobs deduplicated across rows, attachments, npy arrays,
single-file and directory objects with manifests, a third of the rows deleted.
It is built once per size; its database is copied (``CREATE DATABASE …
TEMPLATE``) and its store directory copied file by file, so both collectors
see the same rows and the same files. Then, each in a process of its own:

- ``reclaim.datajoint.collect(*schemas, store_name="main", dry_run=False)``:
  the deprecated one-shot form (quarantine, then purge with grace 0), with the
  journal, the lease and the re-check;
- ``dj.gc.GarbageCollector(*schemas, store="main").collect(dry_run=False)``.

Both must leave exactly the same files in their stores (checked); the table
gives seconds, the throughput ratio (dj.gc's seconds / reclaim's) and the peak
RSS of each process::

    .venv/bin/python bench/datajoint_bench.py --rows 5000 50000

The pipeline is built with DataJoint's own multi-row insert (5,000 rows per
schema in about 80 s, 50,000 in about 15 min here); ``--keep --work DIR`` keeps
each size's database (``djbench_<rows>``) and store under ``DIR`` and reuses
them on the next run. dj.gc deletes each orphan and then lists its parent
directory, which grows with the table, so it slows down quadratically:
``--djgc-limit SECONDS`` stops it, and its time and the ratio are then printed
as lower bounds (``> ...``). Needs PostgreSQL on 127.0.0.1:5432 (``--server``
for another URL).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "datajoint"))

from common import mb, run_child  # noqa: E402

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PREFIX = "djb"


def _admin(server: str) -> sa.Engine:
    return sa.create_engine(server, isolation_level="AUTOCOMMIT")


def _recreate(server: str, name: str, template: str | None = None) -> None:
    engine = _admin(server)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    engine.dispose()


def _drop(server: str, name: str) -> None:
    engine = _admin(server)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    engine.dispose()


def _files(root: Path) -> dict[str, int]:
    """Every file of the store outside reclaim's trash, with its size."""
    out = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not relative.startswith("_trash/"):
            out[relative] = path.stat().st_size
    return out


def _report(output: bytes) -> dict[str, Any]:
    """The child's JSON line: its last line of output (DataJoint prints what it deletes before it)."""
    result: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
    return result


def _connect(database: str, store: Path) -> Any:
    import djpipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return djpipeline.connect(
            "postgresql", database=database, stores={"main": store, "cold": store.parent / "cold"}
        )


def _schemas(connection: Any) -> tuple[Any, Any]:
    import datajoint as dj

    return tuple(dj.Schema(f"{PREFIX}_{name}", connection=connection) for name in ("ephys", "imaging"))  # type: ignore[return-value]


def child_build(database: str, store: Path, rows: int) -> None:
    import djpipeline

    connection = _connect(database, store)
    with tempfile.TemporaryDirectory() as work, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        djpipeline.build(connection, PREFIX, Path(work), rows=rows)
    print(json.dumps({"files": len(_files(store))}))


def child_reclaim(database: str, store: Path) -> None:
    import reclaim.datajoint as rdj

    connection = _connect(database, store)
    rdj.config["gc.min_age_seconds"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = rdj.collect(*_schemas(connection), store_name="main", dry_run=False)
    print(
        json.dumps(
            {"quarantined": report.quarantined[0].quarantined.count, "purged": report.purged[0].purged.count}
        )
    )


def child_djgc(database: str, store: Path) -> None:
    import datajoint as dj

    connection = _connect(database, store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = dj.gc.GarbageCollector(*_schemas(connection), store="main").collect(dry_run=False)
    print(json.dumps({"deleted": result["deleted"], "errors": result["errors"]}))


def _exists(server: str, name: str) -> bool:
    engine = _admin(server)
    with engine.connect() as conn:
        found = conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).first()
    engine.dispose()
    return found is not None


def measure(
    rows: int, server: str, work: Path, *, keep: bool = False, djgc_limit: float | None = None
) -> dict[str, Any]:
    base = f"djbench_{rows}"
    a, b = f"{base}_reclaim", f"{base}_djgc"
    template = work / f"{rows}-template" / "main"
    store_a, store_b = work / f"{rows}-reclaim" / "main", work / f"{rows}-djgc" / "main"
    seconds = 0.0
    if keep and template.is_dir() and (template.parent / "built.json").is_file() and _exists(server, base):
        built = json.loads((template.parent / "built.json").read_text())
        print(f"  reusing the pipeline of {rows:,} rows per schema built before ({built['files']:,} files)")
    else:
        shutil.rmtree(template.parent, ignore_errors=True)
        _recreate(server, base)
        started = time.perf_counter()
        seconds, _, out = run_child(
            [sys.executable, __file__, "--child", "build", base, str(template), str(rows)]
        )
        built = _report(out)
        (template.parent / "built.json").write_text(json.dumps(built))
        print(
            f"  built {rows:,} rows per schema, {built['files']:,} files "
            f"in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    for store in (store_a, store_b):
        shutil.rmtree(store.parent, ignore_errors=True)
        shutil.copytree(template, store)
    _recreate(server, a, template=base)
    _recreate(server, b, template=base)
    if not keep:
        _drop(server, base)
        shutil.rmtree(template.parent)
    s_reclaim, rss_reclaim, out_reclaim = run_child(
        [sys.executable, __file__, "--child", "reclaim", a, str(store_a)]
    )
    r = _report(out_reclaim)
    print(f"  reclaim: {s_reclaim:.1f} s, peak RSS {mb(rss_reclaim)}, purged {r['purged']:,}", flush=True)
    try:
        s_djgc, rss_djgc, out_djgc = run_child(
            [sys.executable, __file__, "--child", "djgc", b, str(store_b)], timeout=djgc_limit
        )
    except subprocess.TimeoutExpired:
        # dj.gc is stopped: its time is only known to exceed the limit, so the ratio is a lower bound
        print(f"  dj.gc: stopped after {djgc_limit:.0f} s", flush=True)
        s_djgc, rss_djgc, stopped = float(djgc_limit or 0), 0, True
    else:
        stopped = False
        print(f"  dj.gc: {s_djgc:.1f} s, peak RSS {mb(rss_djgc)}", flush=True)
        left_a, left_b = _files(store_a), _files(store_b)
        if left_a != left_b:
            only = sorted(set(left_a) ^ set(left_b))[:5]
            raise SystemExit(
                f"the two collectors left different files ({len(set(left_a) ^ set(left_b))}): {only}"
            )
        d = _report(out_djgc)
        if r["purged"] != d["deleted"] or d["errors"]:
            raise SystemExit(
                f"reclaim purged {r['purged']}, dj.gc deleted {d['deleted']} with {d['errors']} errors"
            )
    orphans_expected = r["purged"]
    for name in (a, b):
        _drop(server, name)
    shutil.rmtree(work / f"{rows}-reclaim")
    shutil.rmtree(work / f"{rows}-djgc")
    return {
        "rows": rows,
        "files": built["files"],
        "orphans": orphans_expected,
        "reclaim_s": s_reclaim,
        "djgc_s": s_djgc,
        "reclaim_rss": rss_reclaim,
        "djgc_rss": rss_djgc,
        "seconds_build": seconds,
        "djgc_stopped": stopped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[5000, 50000], help="rows per schema")
    parser.add_argument("--server", default=ADMIN, help="an admin URL of the PostgreSQL server")
    parser.add_argument("--work", type=Path, default=None, help="where the stores go (default: a temp dir)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep each size's built pipeline (database and store under --work) and reuse it next time",
    )
    parser.add_argument(
        "--djgc-limit",
        type=float,
        default=None,
        help="stop dj.gc after this many seconds (its time and the ratio are then lower bounds)",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, database, store, *rest = args.child
        {"build": lambda: child_build(database, Path(store), int(rest[0])),
         "reclaim": lambda: child_reclaim(database, Path(store)),
         "djgc": lambda: child_djgc(database, Path(store))}[kind]()  # fmt: skip
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="reclaim-djbench-"))
    results = []
    for rows in args.rows:
        results.append(measure(rows, args.server, work, keep=args.keep, djgc_limit=args.djgc_limit))
        r = results[-1]
    print()
    print(
        "| rows per schema | files | orphans | reclaim collect | dj.gc collect | throughput ratio "
        "| peak RSS reclaim | peak RSS dj.gc |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        bound = "> " if r["djgc_stopped"] else ""
        print(
            f"| {r['rows']:,} | {r['files']:,} | {r['orphans']:,} "
            f"| {r['reclaim_s']:.1f} s | {bound}{r['djgc_s']:.1f} s "
            f"| {bound}{r['djgc_s'] / r['reclaim_s']:.2f}x | {mb(r['reclaim_rss'])} "
            f"| {'-' if r['djgc_stopped'] else mb(r['djgc_rss'])} |"
        )
    print()
    print("reproduce: .venv/bin/python bench/datajoint_bench.py " + shlex.join(sys.argv[1:]))


if __name__ == "__main__":
    main()
