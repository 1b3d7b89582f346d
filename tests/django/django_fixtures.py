"""Helpers of the Django tests: the test project, and how to run its ``manage.py`` (fixtures: conftest.py).

The project is a real Django project (tests/django/project) on PostgreSQL, S3 (moto's server)
and a local directory.

One PostgreSQL database of its own (``reclaim_django_<random>``) and one bucket
for the whole session; :func:`fresh` empties the models' tables, the bucket,
the local directory and reclaim's catalog before each test. The Django
settings come from the environment (``RECLAIM_DJ_*``), so that ``manage.py``
and Celery workers started as subprocesses see the same project.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PG_ADMIN_URL = os.environ.get("RECLAIM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

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
            str(p.relative_to(self.media)): p.read_bytes()
            for p in sorted(self.media.rglob("*"))
            if p.is_file()
        }
