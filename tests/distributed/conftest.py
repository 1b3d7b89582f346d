"""Twin archives (one for the single-process run, one for the distributed run) and real Celery workers.

The workers are separate processes (``celery -A reclaim.distributed.app worker``,
prefork pool) on the Redis broker at 127.0.0.1:6379, each test on a queue of
its own. The archives are the lifecycle tests' (a SQLite table of references,
a local directory store, a catalog on SQLite or PostgreSQL).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from lifecycle.archive import Archive, make_archive
from reclaim.api import CycleReport
from reclaim.catalog import ACTIVE, Journal, open_catalog

SRC = Path(__file__).resolve().parents[2] / "src"


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def redis() -> None:
    """Skip (outside CI) or fail (in CI) when Redis is down."""
    if not _redis_up():
        message = "Redis is not reachable at 127.0.0.1:6379; start it with `redis-server --daemonize yes`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def queue(redis: None) -> str:
    """A Celery queue of this test's own."""
    return f"reclaim-test-{secrets.token_hex(4)}"


@dataclass
class Workers:
    """Celery worker processes listening on one queue; their logs in ``log``."""

    processes: list[subprocess.Popen[bytes]]
    log: Path

    def children(self) -> list[psutil.Process]:
        """The pool processes (where the tasks run)."""
        return [child for p in self.processes for child in psutil.Process(p.pid).children(recursive=True)]

    def stopped_children(self) -> list[psutil.Process]:
        """The pool processes that stopped themselves (``RECLAIM_PAUSE``)."""
        stopped = []
        for child in self.children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if child.status() == psutil.STATUS_STOPPED:
                    stopped.append(child)
        return stopped

    def text(self) -> str:
        """What the workers logged."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextmanager
def workers(queue: str, log: Path, *, count: int = 2, concurrency: int = 1, **env: str) -> Iterator[Workers]:
    """``count`` worker processes of ``concurrency`` pool processes each, on ``queue``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RECLAIM_")}
    environment |= {
        "PYTHONPATH": os.pathsep.join([str(SRC), environment.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "RECLAIM_QUEUE": queue,
        **env,
    }
    processes = []
    with log.open("ab") as sink:
        for index in range(count):
            command = [sys.executable, "-m", "celery", "-A", "reclaim.distributed.app", "worker"]
            command += ["--pool=prefork", f"--concurrency={concurrency}", "-Q", queue]
            command += ["-n", f"{queue}-{index}@%h", "--without-mingle", "--without-gossip"]
            command += ["--loglevel=WARNING"]
            processes.append(subprocess.Popen(command, env=environment, stdout=sink, stderr=sink))
    pool = Workers(processes, log)
    try:
        yield pool
    finally:
        for child in pool.children():
            with contextlib.suppress(psutil.NoSuchProcess):
                child.send_signal(signal.SIGCONT)
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def side_by_side_with_a_kill(
    single: Archive, spread: Archive, queue: str, tmp: Path, fault: str, boundaries: dict[str, list[str]]
) -> tuple[CycleReport, CycleReport]:
    """A cycle of ``single`` in this process and of ``spread`` on one real worker whose pool process is
    killed once at ``fault`` (and retried); both reports. Fails when no pool process was killed."""
    from reclaim import api
    from reclaim.distributed import run
    from reclaim.distributed.app import CeleryDispatcher, make_app

    marker = tmp / "killed"
    dispatcher = CeleryDispatcher(make_app(queue=queue), timeout=180)
    try:
        with workers(
            queue, tmp / "workers.log", count=1, RECLAIM_FAULT=fault, RECLAIM_FAULT_ONCE=str(marker)
        ):
            expected = api.run(single.config_path)
            got = run(spread.config_path, dispatcher=dispatcher, boundaries=boundaries)
    finally:
        dispatcher.close()
    assert marker.exists(), "no pool process was killed"
    return expected, got


def build(tmp: Path, keys: dict[str, bool], *, catalog_url: str | None = None, **options: Any) -> Archive:
    """An archive holding ``keys`` (True: referenced), all of them old enough to be candidates."""
    tmp.mkdir(parents=True, exist_ok=True)
    archive = make_archive(tmp, f"sqlite:///{tmp / 'app.sqlite'}", catalog_url=catalog_url, **options)
    for key, referenced in sorted(keys.items()):
        archive.put(key, key.encode())
        if referenced:
            archive.reference(key)
    return archive


def state(archive: Archive) -> tuple[list[str], dict[str, str]]:
    """Every key in the store (trash included) and the state of every key's active journal entry."""
    root = Path(archive.store_url.removeprefix("file://"))
    listed = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    catalog = open_catalog(archive.config.catalog)
    try:
        journal = Journal(catalog)
        active: dict[str, str] = {}
        after = 0
        while batch := journal.select(store="main", states=ACTIVE, after_id=after):
            active |= {entry.key: entry.state.value for entry in batch}
            after = batch[-1].id
        return listed, active
    finally:
        catalog.dispose()


def counts(archive: Archive, run_id: int | None) -> dict[str, Any]:
    """The run record's counts of run ``run_id``, without ``retried`` (which only a distributed run has)."""
    assert run_id is not None
    catalog = open_catalog(archive.config.catalog)
    try:
        record = catalog.get_run(run_id)
        assert record is not None
        assert record.status == "succeeded", record
        return {k: v for k, v in record.counts.items() if k != "retried"}
    finally:
        catalog.dispose()
