"""A real Django project (tests/django/project) on PostgreSQL, S3 (moto's server) and a local directory.

One PostgreSQL database of its own (``reclaim_django_<random>``) and one bucket
for the whole session; :func:`fresh` empties the models' tables, the bucket,
the local directory and reclaim's catalog before each test. The Django
settings come from the environment (``RECLAIM_DJ_*``), so that ``manage.py``
and Celery workers started as subprocesses see the same project.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import PG_ADMIN_URL, require_server

pytest.importorskip("django", reason="the Django extra is not installed: pip install -e '.[django,dev]'")

PROJECT = Path(__file__).parent / "project"


@dataclass
class Project:
    env: dict[str, str]
    bucket: str
    endpoint: str
    media: Path
    database_url: str

    def manage(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """``python manage.py <args>`` in a subprocess, as an operator runs it."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    def s3(self) -> object:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="AKIDDJANGOTEST",
            aws_secret_access_key="s3-secret-only-in-settings",
        )

    def s3_objects(self) -> dict[str, bytes]:
        """Every object of the bucket under ``media/``, by key relative to it."""
        client = self.s3()
        out = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):  # type: ignore[attr-defined]
            for item in page.get("Contents", []):
                body = client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()  # type: ignore[attr-defined]
                out[item["Key"].removeprefix("media/")] = body
        return out

    def local_files(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.media)): p.read_bytes() for p in sorted(self.media.rglob("*")) if p.is_file()
        }


@pytest.fixture(scope="session")
def project(s3_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    require_server("postgresql")
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
