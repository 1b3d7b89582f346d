"""Fixtures of the dashboard tests: demo archives with some history, a client, a real server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

pytest.importorskip("starlette", reason="the dashboard extra is not installed: pip install -e '.[dev]'")

from starlette.testclient import TestClient

import reclaim.api as api
from reclaim.dashboard import create_app
from reclaim.sample import build_demo_archive

#: a key and a row value an attacker could plant: the pages must show them as text
EVIL_KEY = "evil/<script>alert('key')</script>"
EVIL_VALUE = "<script>alert('row')</script>"


def cli_json(*args: str) -> Any:
    """``reclaim ARGS --json`` in a real process, parsed (what an operator's script sees)."""
    done = subprocess.run(
        [sys.executable, "-m", "reclaim", args[0], "--json", *args[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@dataclass
class Demo:
    """A demo archive after a scan, a check and a cycle, with an evil key and row value in it."""

    directory: Path
    config: Path


def build_demo(directory: Path) -> Demo:
    """The demo archive plus an orphan named like a script and an old upload whose filename is one."""
    archive = build_demo_archive(directory)
    month_ago = time.time() - 30 * 86400
    evil = archive.directory / "store" / EVIL_KEY
    evil.parent.mkdir(parents=True, exist_ok=True)
    evil.write_bytes(b"<b>bold</b>")
    os.utime(evil, (month_ago, month_ago))
    engine = sa.create_engine(f"sqlite:///{archive.directory / 'archive.sqlite'}")
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO uploads (id, filename, created) VALUES (99, :name, :created)"),
            {"name": EVIL_VALUE, "created": datetime.now(UTC).replace(tzinfo=None) - timedelta(days=20)},
        )
    engine.dispose()
    api.init(archive.config_path)
    api.scan(archive.config_path, show=50)
    api.check(archive.config_path)
    api.run(archive.config_path)
    return Demo(archive.directory, archive.config_path)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """One demo archive per test module (the pages only read it)."""
    return build_demo(tmp_path_factory.mktemp("demo") / "archive")


@pytest.fixture
def client(demo: Demo) -> Iterator[TestClient]:
    with TestClient(create_app(demo.config)) as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A ``reclaim serve`` process and its address."""

    url: str
    process: subprocess.Popen[str]


def start_server(config: Path, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> Server:
    """Start ``reclaim serve`` on a free port and wait until it answers ``/healthz``."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "reclaim", "serve", "--config", str(config), "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    prefix = args[args.index("--prefix") + 1] if "--prefix" in args else ""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}{prefix}/healthz", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return Server(url + prefix, process)
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            output = process.communicate()[0]
            raise AssertionError(f"reclaim serve did not start: {output}")
        time.sleep(0.2)


def stop_server(server: Server) -> str:
    """Stop the server; return what it printed."""
    server.process.terminate()
    try:
        output, _ = server.process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        output, _ = server.process.communicate()
    return output
