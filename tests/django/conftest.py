"""Fixtures of the Django tests: the project's database, bucket and directory (see django_fixtures)."""

from __future__ import annotations

import os
import secrets
import socket
import sys
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

pytest.importorskip("django", reason="the Django extra is not installed: pip install -e '.[django,dev]'")

from django_fixtures import PG_ADMIN_URL, PROJECT, Project


def _require_postgresql() -> None:
    # the root conftest's require_server, which this conftest cannot import (both are "conftest")
    url = sa.make_url(PG_ADMIN_URL)
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=2):
            return
    except OSError:
        message = f"PostgreSQL is not reachable at {url.host}:{url.port} (see tests/conftest.py)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def project(s3_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    _require_postgresql()
    name = f"reclaim_django_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    bucket = f"reclaim-dj-{secrets.token_hex(4)}"
    import boto3

    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    media = tmp_path_factory.mktemp("django-media")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "proj.settings",
        "RECLAIM_DJ_DB": name,
        "RECLAIM_DJ_BUCKET": bucket,
        "RECLAIM_DJ_S3": s3_server,
        "RECLAIM_DJ_MEDIA": str(media),
        "RECLAIM_DJ_QUEUE": f"reclaim-{secrets.token_hex(4)}",
        "PYTHONPATH": os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith(("RECLAIM_DJ_", "DJANGO_"))})
    sys.path.insert(0, str(PROJECT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    database_url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield Project(env, bucket, s3_server, media, database_url)
    finally:
        from django.db import connections

        connections.close_all()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture
def fresh(project: Project) -> Project:
    """The project with no rows, no files and a new, empty catalog."""
    from archive import models
    from django.contrib.admin.models import LogEntry

    for model in (models.Asset, models.AssetBlob, models.Upload, models.Note):
        model.objects.all().delete()
    LogEntry.objects.all().delete()
    client = project.s3()
    for key in project.s3_objects():
        client.delete_object(Bucket=project.bucket, Key=f"media/{key}")  # type: ignore[attr-defined]
    for path in sorted(project.media.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    engine = sa.create_engine(project.database_url)
    with engine.begin() as conn:
        for table in sa.inspect(conn).get_table_names():
            if table.startswith("reclaim_"):
                conn.exec_driver_sql(f'DROP TABLE "{table}" CASCADE')
    engine.dispose()
    from reclaim.django.management.commands.reclaim import run

    assert run(["init"], prog_name="reclaim") == 0
    return project
