"""The Celery task run by real workers (separate processes) on the Redis broker at 127.0.0.1:6379.

Worker ``a`` is started with ``RECLAIM_PAUSE`` (it stops itself with SIGSTOP
mid-cycle, holding the lease) or ``RECLAIM_FAULT`` (it kills itself with
SIGKILL mid-cycle); worker ``b`` is a plain one. Each listens on a queue of
its own, so the test decides which worker runs which task.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest
from django_fixtures import PROJECT, Project


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _redis() -> None:
    if not _redis_up():
        message = "Redis is not reachable at 127.0.0.1:6379; start it with `redis-server --daemonize yes`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def worker(project: Project, queue: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """A Celery worker process (solo pool: the task runs in the worker process itself)."""
    command = [sys.executable, "-m", "celery", "-A", "proj", "worker", "--pool=solo", "-Q", queue]
    command += ["-n", f"{queue}@%h", "--without-mingle", "--without-gossip", "--loglevel=WARNING"]
    process = subprocess.Popen(command, cwd=PROJECT, env={**project.env, **env})
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _queue(project: Project, name: str) -> str:
    return f"{project.env['RECLAIM_DJ_QUEUE']}-{name}"


def _send(queue: str) -> object:
    from proj.celery import app

    return app.send_task("reclaim.django.tasks.run_cycle", queue=queue)


def _stopped(process: subprocess.Popen[bytes]) -> bool:
    return psutil.Process(process.pid).status() == psutil.STATUS_STOPPED


def _orphans(project: Project, n: int) -> set[str]:
    client = project.s3()
    keys = {f"blobs/orphan{i}.dat" for i in range(n)}
    for key in keys:
        client.put_object(Bucket=project.bucket, Key=f"media/{key}", Body=b"o")  # type: ignore[attr-defined]
    return keys


def test_overlapping_tasks_one_runs_one_reports_another_cycle_running(fresh: Project) -> None:
    _orphans(fresh, 2)
    qa, qb = _queue(fresh, "a"), _queue(fresh, "b")
    with worker(fresh, qa, RECLAIM_PAUSE="quarantine.after-intent") as a, worker(fresh, qb):
        first = _send(qa)
        while not _stopped(a):  # the first cycle stops mid-quarantine, holding the lease
            assert a.poll() is None, "worker a died"
            _wait_a_little(a)
        second = json.loads(_send(qb).get(timeout=120))  # type: ignore[attr-defined]
        assert second["status"] == "locked"
        assert "another cycle is running" in second["message"]
        a.send_signal(signal.SIGCONT)
        done = json.loads(first.get(timeout=120))  # type: ignore[attr-defined]
    assert done["status"] == "ok"
    assert sum(q["quarantined"]["count"] for q in done["report"]["quarantined"]) == 2


def test_a_worker_killed_mid_cycle_is_recovered_by_the_next_task(fresh: Project) -> None:
    from reclaim import api
    from reclaim.django.conf import reclaim_config

    keys = _orphans(fresh, 3)
    before = fresh.s3_objects()
    qa, qb = _queue(fresh, "a"), _queue(fresh, "b")
    with worker(fresh, qa, RECLAIM_FAULT="quarantine.after-intent") as a:
        _send(qa)
        assert a.wait(120) == -signal.SIGKILL  # the whole worker died mid-cycle
    config = reclaim_config()
    assert api.lock(config).holder is not None  # its lease is left behind, stale once it expires
    with worker(fresh, qb):
        api.lock(config, break_lease=True, force=True)  # an operator breaks the dead worker's lease
        result = json.loads(_send(qb).get(timeout=120))  # type: ignore[attr-defined]
    assert result["status"] == "ok"
    assert result["report"]["recovered"], result["report"]
    assert fresh.s3_objects() == before  # mark mode: every byte where it was
    status = api.status(config)
    assert {s.store: s.summary.quarantined for s in status.stores}["default"] == len(keys)
    assert {s.store: s.summary.in_flight for s in status.stores}["default"] == 0


def _wait_a_little(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(0.2)
