"""What the benchmarks share: the object keys, the PostgreSQL references, the measured child process.

- :func:`object_keys`: the N keys of a benchmark store, ``blobs/<hh>/<hh>/<uuid>``
  (256 x 256 shards, as content-addressed archives lay out their objects), the
  same for every run and every bench (the uuid is the MD5 of the object's
  index), each with whether it is an orphan (every ``round(1 / fraction)``-th).
- :func:`load_references`: the keys of the others into a fresh table
  ``assets (id, blob_key)`` with an index on ``blob_key`` (as a referencing
  column usually has) on PostgreSQL (127.0.0.1:5432, user postgres, trust
  auth) or MariaDB (127.0.0.1:3306, user root, empty password; ``blob_key``
  is ``utf8mb4_bin``);
- :func:`write_config`: a reclaim.toml for one store ``bench`` whose
  references are that table, with a SQLite catalog beside the file;
- :func:`run_child`: a command in a fresh child process, its wall time and
  peak RSS (``ru_maxrss`` from ``wait4``).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

PG = "postgresql://postgres@127.0.0.1:5432"
MARIADB = "mysql://root@127.0.0.1:3306"
SERVERS = ("postgresql", "mariadb")
"""The database servers references can be loaded into (``--server`` of the benches)."""


def dsn(server: str, database: str) -> str:
    """The DSN of ``database`` on ``server`` for ``baseline.py --db``."""
    return f"{MARIADB if server == 'mariadb' else PG}/{database}"


def reclaim_url(server: str, database: str) -> str:
    """The SQLAlchemy URL of ``database`` on ``server`` for reclaim.toml."""
    if server == "mariadb":
        return f"mysql+pymysql://root@127.0.0.1:3306/{database}"
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"


def object_keys(n: int, orphan_fraction: float) -> Iterator[tuple[str, bool]]:
    """The ``n`` keys of a benchmark store in a fixed order, each with whether nothing references it."""
    period = round(1 / orphan_fraction) if orphan_fraction else 0
    for i in range(n):
        u = uuid.UUID(bytes=hashlib.md5(i.to_bytes(8, "big"), usedforsecurity=False).digest()).hex
        yield f"blobs/{u[:2]}/{u[2:4]}/{u}", bool(period and i % period == 0)


def load_references(database: str, keys: list[str], server: str = "postgresql") -> None:
    """Create ``database`` if needed and load ``keys`` into a fresh table ``assets (id, blob_key)``.

    ``blob_key`` gets an index once loaded, on both servers: the baseline's unordered read
    does not need it; on MariaDB it serves reclaim's ordered stream (the column's
    ``utf8mb4_bin`` compares by code point), on PostgreSQL it does not (``COLLATE "C"``
    is not the database's collation).
    """
    if server == "mariadb":
        _load_mariadb(database, keys)
        return
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            admin.execute(f"CREATE DATABASE {database}")
    with psycopg.connect(f"{PG}/{database}") as conn:
        conn.execute("DROP TABLE IF EXISTS assets")
        conn.execute("CREATE TABLE assets (id bigserial PRIMARY KEY, blob_key text NOT NULL)")
        with conn.cursor().copy("COPY assets (blob_key) FROM STDIN") as copy:
            for key in keys:
                copy.write_row((key,))
        conn.execute("CREATE INDEX assets_blob_key ON assets (blob_key)")
        conn.execute("ANALYZE assets")


def _load_mariadb(database: str, keys: list[str]) -> None:
    import pymysql  # type: ignore[import-untyped]

    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
            cursor.execute(f"USE {database}")
            cursor.execute("DROP TABLE IF EXISTS assets")
            cursor.execute(
                "CREATE TABLE assets (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                "blob_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL) ENGINE=InnoDB"
            )
            conn.begin()
            for start in range(0, len(keys), 10_000):
                rows = [(key,) for key in keys[start : start + 10_000]]
                cursor.executemany("INSERT INTO assets (blob_key) VALUES (%s)", rows)
            conn.commit()
            cursor.execute("CREATE INDEX assets_blob_key ON assets (blob_key)")
            cursor.execute("ANALYZE TABLE assets")
    finally:
        conn.close()


def write_config(
    path: Path, database: str, store_url: str, store_settings: str = "", server: str = "postgresql"
) -> None:
    """Write a reclaim.toml for the store ``bench`` at ``store_url`` (``min_age`` 0, ``max_fraction`` 1).

    Its references are ``assets.blob_key`` of ``database`` on ``server``; its catalog a SQLite
    file beside ``path``. ``store_settings`` are more TOML lines of the store.
    """
    path.write_text(
        f"""
[catalog]
url = "sqlite:///{path.parent / "catalog.sqlite"}"

[databases.pg]
url = "{reclaim_url(server, database)}"

[stores.bench]
url = "{store_url}"
min_age = "0"
max_fraction = 1.0
{store_settings}
[[stores.bench.references]]
database = "pg"
table = "assets"
column = "blob_key"
"""
    )


def run_child(
    command: list[str], env: dict[str, str] | None = None, timeout: float | None = None
) -> tuple[float, int, bytes]:
    """Run ``command`` in a child process; return (seconds, peak RSS bytes, stdout).

    Raises ``SystemExit`` with the end of its stderr if it fails, and
    ``subprocess.TimeoutExpired`` after killing it when it runs longer than
    ``timeout`` seconds. Measure from a
    parent that holds little: ``ru_maxrss`` survives ``exec``, so a child forked
    from a large parent would report that parent's resident pages.
    """
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert child.stdout is not None
    assert child.stderr is not None
    # both pipes are drained by threads (stdout may be large); the child is reaped here with
    # wait4, not by Popen, so that its rusage (the peak RSS) is ours to read
    chunks: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda n=name, f=pipe: chunks.__setitem__(n, f.read()), daemon=True)
        for name, pipe in (("out", child.stdout), ("err", child.stderr))
    ]
    for reader in readers:
        reader.start()
    deadline = None if timeout is None else start + timeout
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG if deadline is not None else 0)
        if pid:
            break
        if deadline is not None and time.perf_counter() > deadline:
            child.kill()
            os.wait4(child.pid, 0)
            child.returncode = -9
            raise subprocess.TimeoutExpired(command, timeout or 0)
        time.sleep(0.2)
    child.returncode = status
    seconds = time.perf_counter() - start
    for reader in readers:
        reader.join()
    if status != 0:
        raise SystemExit(f"{shlex.join(command)} failed ({status}): {chunks['err'].decode()[-2000:]}")
    return seconds, usage.ru_maxrss * 1024, chunks["out"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30) -> None:
    """Return once 127.0.0.1:``port`` accepts connections; ``SystemExit`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def mb(rss: int) -> str:
    """Bytes as ``12.3 MB`` (MiB, as the tables have always shown them)."""
    return f"{rss / 2**20:.1f} MB"
