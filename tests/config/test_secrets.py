"""Invariant 9: a planted secret appears in no output, repr, dump, exception or log record of any command.

The secret is planted as a database password (in the URL's userinfo and in its
``?password=`` query string), as S3 credentials (``key``, ``secret``,
``token``), literally and through
``${ENV}``; every command runs through the real CLI entry point (in process,
so that every log record, botocore's at DEBUG included, is captured), with and
without ``--json``, with the databases reachable and unreachable.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import reclaim
from lifecycle.archive import make_archive
from reclaim.cli.app import app
from reclaim.config import load_config, redact
from reclaim.errors import ReclaimError

SECRET = "Zq9-PGSECRET-7731"
S3_KEY = "Zq9-S3KEY-7731"
S3_SECRET = "Zq9-S3SECRET-7731"
S3_TOKEN = "Zq9-S3TOKEN-7731"
PLANTED = ("Zq9",)  # every planted value starts with it


def _world(root: Path, pg_url: str, s3_server: str, s3_bucket: str, *, port: int = 5432) -> Path:
    base = sa.make_url(pg_url)
    pg_name = base.database
    host = f"{base.host}:{port}"
    # trust authentication accepts any password: the planted one travels everywhere a real one would
    app_url = f"postgresql+psycopg://{base.username}:${{RECLAIM_PLANTED}}@{host}/{pg_name}"
    catalog_url = f"postgresql+psycopg://{base.username}@{host}/{pg_name}?password={SECRET}&sslmode=prefer"
    if port == 5432:  # reachable: the tables and objects the commands find (port 1: nothing listens)
        engine = sa.create_engine(f"postgresql+psycopg://{base.username}@{host}/{pg_name}")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE assets (id INTEGER PRIMARY KEY, blob_key TEXT, created TIMESTAMP)"
            )
            conn.exec_driver_sql("INSERT INTO assets VALUES (1, 'live/1', now() - interval '30 days')")
        engine.dispose()
        import boto3

        client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
        client.put_object(Bucket=s3_bucket, Key="data/live/1", Body=b"x")
        client.put_object(Bucket=s3_bucket, Key="data/orphan", Body=b"y")
    store = root / "blobs"
    (store / "live").mkdir(parents=True, exist_ok=True)
    (store / "live" / "1").write_bytes(b"x")
    (store / "orphan").write_bytes(b"y")
    path = root / "reclaim.toml"
    path.write_text(
        f"""
[catalog]
url = "{catalog_url}"
lease_ttl = "30s"

[databases.app]
url = "{app_url}"
connect_timeout = "2s"

[stores.local]
url = "file://{store}"
min_age = "0"

[[stores.local.references]]
database = "app"
table = "assets"
column = "blob_key"

[stores.s3]
url = "s3://{s3_bucket}/data/"
min_age = "0"
mode = "mark"

[stores.s3.storage_options]
key = "{S3_KEY}"
secret = "${{RECLAIM_PLANTED_S3}}"
token = "{S3_TOKEN}"
client_kwargs = {{ endpoint_url = "{s3_server}", region_name = "us-east-1" }}

[[stores.s3.references]]
database = "app"
table = "assets"
column = "blob_key"

[collections.assets]
database = "app"
table = "assets"
age_column = "created"
min_age = "7d"
action = "report"
"""
    )
    return path


COMMANDS = [
    ["init"],
    ["scan"],
    ["scan", "--json", "--show", "5"],
    ["check"],
    ["check", "--json"],
    ["status"],
    ["status", "--json"],
    ["runs"],
    ["runs", "--json"],
    ["lock"],
    ["lock", "--json"],
    ["quarantine", "--dry-run"],
    ["quarantine", "--dry-run", "--json"],
    ["purge", "--dry-run"],
    ["run", "--dry-run"],
    ["run", "--dry-run", "--json"],
    ["collect", "--dry-run", "--json"],
    ["recover", "--json"],
    ["restore", "--store", "local", "--dry-run", "nothing/here"],
    ["run", "--json"],
    ["runs", "--json"],
    ["status", "--json"],
    ["lock", "--break", "--json"],
]


def _leaks(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(p in line for p in PLANTED)]


def _exception_texts(exc: BaseException) -> Iterator[str]:
    """What a traceback or a logger shows of ``exc`` and its chain, plus its attributes."""
    yield "".join(traceback.format_exception(exc))
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        yield repr({k: v for k, v in vars(current).items() if not k.startswith("__")})
        # the chain a traceback shows: a suppressed context (``raise ... from None``) is not shown
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECLAIM_PLANTED", SECRET)
    monkeypatch.setenv("RECLAIM_PLANTED_S3", S3_SECRET)


def _run_all(path: Path, caplog: pytest.LogCaptureFixture, commands: list[list[str]]) -> list[int]:
    runner = CliRunner()
    codes = []
    for argv in commands:
        result = runner.invoke(app, [*argv, "--config", str(path)])
        assert not isinstance(result.exception, AssertionError)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"{argv}: {result.exception!r}")
        assert _leaks(result.stdout) == [], argv
        assert _leaks(result.stderr) == [], argv
        codes.append(result.exit_code)
    records = [r for r in caplog.records if _leaks(r.getMessage()) or _leaks(str(r.exc_text or ""))]
    assert [(r.name, r.getMessage()[:300]) for r in records] == []
    assert _leaks(caplog.text) == []
    return codes


@pytest.mark.usefixtures("planted")
def test_no_command_shows_a_planted_secret(
    tmp_path: Path, pg_url: str, s3_server: str, s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = _world(tmp_path, pg_url, s3_server, s3_bucket)
    config = load_config(path)
    for text in (repr(config), str(config), config.model_dump_json(), repr(config.model_dump())):
        assert _leaks(text) == []
    # the secrets still reach the drivers: the real values are what the runtime uses
    assert SECRET in str(config.databases["app"].url)
    assert config.stores["s3"].storage_options["secret"] == S3_SECRET

    codes = _run_all(path, caplog, COMMANDS)
    assert codes[0] == 0  # init created the catalog on PostgreSQL with the planted URL
    assert codes[COMMANDS.index(["run", "--json"])] == 0
    assert any(r.name.startswith("botocore") for r in caplog.records)  # botocore's DEBUG was captured
    # the real run quarantined each store's orphan: the commands did their work with the planted secrets
    status = reclaim.status(path)
    assert {s.store: s.summary.quarantined for s in status.stores} == {"local": 1, "s3": 1}


@pytest.mark.usefixtures("planted")
def test_no_failure_shows_a_planted_secret(
    tmp_path: Path, pg_url: str, s3_server: str, s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # both the databases and the catalog on a port where nothing listens
    path = _world(tmp_path, pg_url, s3_server, s3_bucket, port=1)
    codes = _run_all(path, caplog, [c for c in COMMANDS if c[0] != "init"] + [["init"]])
    assert all(code != 0 for code in codes[:-1])
    for call in (reclaim.scan, reclaim.status, reclaim.check, reclaim.init):
        with pytest.raises(ReclaimError) as info:
            call(path)
        for text in _exception_texts(info.value):
            assert _leaks(text) == [], (call.__name__, text)


@pytest.mark.usefixtures("planted")
def test_a_secret_in_a_wrong_field_and_a_bad_store_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "reclaim.toml"
    path.write_text(
        f"""
[databases.app]
url = "sqlite:///{tmp_path / "app.sqlite"}"
connect_timeout = "${{RECLAIM_PLANTED}}"

[stores.s3]
url = "s3://u:{SECRET}@bucket/?token={SECRET}"
"""
    )
    codes = _run_all(path, caplog, [["scan"], ["scan", "--json"], ["status", "--json"], ["init"]])
    assert codes == [2, 2, 2, 2]


def _key_world(root: Path) -> Path:
    """A SQLite archive whose store's ``min_age`` and ``mode`` come from the environment."""
    archive = make_archive(
        root, f"sqlite:///{root / 'app.sqlite'}", min_age="${RECLAIM_TEST_MINAGE}", mode="${RECLAIM_MODE}"
    )
    archive.reference("_hash/hoa/keptmove")
    for key in ("_hash/hoa/q4gfwyb36leozblzmove7vxqha", "_hash/hoa/keptmove"):
        archive.put(key, b"z")
    archive.dispose()
    return archive.config_path


def test_substituted_values_that_are_not_secrets_never_alter_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECLAIM_MODE", "move")
    monkeypatch.setenv("RECLAIM_TEST_MINAGE", "0")
    path = _key_world(tmp_path)
    assert load_config(path).stores["main"].mode == "move"
    runner = CliRunner()
    result = runner.invoke(app, ["scan", "--json", "--show", "5", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "_hash/hoa/q4gfwyb36leozblzmove7vxqha" in result.stdout
    assert "***" not in result.stdout
    assert redact("_hash/hoa/q4gfwyb36leozblzmove7vxqha") == "_hash/hoa/q4gfwyb36leozblzmove7vxqha"


def test_the_log_filter_masks_credentials_in_message_and_arguments(caplog: pytest.LogCaptureFixture) -> None:
    from reclaim.config import install_log_filter, register_secret

    install_log_filter()
    register_secret(SECRET)
    caplog.set_level(logging.DEBUG)
    log: Any = logging.getLogger("botocore.some.late.child")
    log.debug("password %s", SECRET)
    log.debug("%s", {"headers": {"X-Amz-Security-Token": b"FQoGZXIvYXdzEJr", "Authorization": "x"}})
    log.debug("Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/s3/aws4_request, Signature=0a1b2c3d")
    logging.getLogger("reclaim.catalog").info("url postgresql://u:%s@h/d?password=%s", "pw1234", "pw5678")
    try:
        raise RuntimeError(f"failed with {SECRET}")
    except RuntimeError:
        logging.getLogger("s3fs").exception("boom")
    text = caplog.text
    for leaked in (SECRET, "FQoGZXIvYXdzEJr", "AKIAIOSFODNN7EXAMPLE", "0a1b2c3d", "pw1234", "pw5678"):
        assert leaked not in text
    assert "boom" in text
