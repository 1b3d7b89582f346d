"""examples/django: the DANDI-shaped project builds its configuration and runs a cycle on it."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from django_fixtures import PG_ADMIN_URL, Project

EXAMPLE = Path(__file__).parents[2] / "examples" / "django"


def test_the_dandi_example_maps_its_models_and_rules(project: Project) -> None:
    name = f"reclaim_dandi_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    bucket = f"dandi-{secrets.token_hex(4)}"
    project.s3().create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    env = {k: v for k, v in project.env.items() if not k.startswith("DJANGO_SETTINGS") and k != "PYTHONPATH"}
    env.update(
        DANDI_DB=name,
        DANDI_BUCKET=bucket,
        DANDI_S3_ENDPOINT=project.endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=EXAMPLE,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    try:
        assert manage("migrate", "--run-syncdb", "-v0").returncode == 0
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")  # the server is still there
        engine = sa.create_engine(sa.make_url(PG_ADMIN_URL).set(database=name))
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA reclaim")
        engine.dispose()
        printed = manage("reclaim", "config")
        assert printed.returncode == 0, printed.stderr
        for table in ("api_assetblob", "api_upload", "zarr_zarrarchive"):
            assert f'table = "{table}"' in printed.stdout
        assert 'add_prefix = "zarr/"' in printed.stdout
        assert "NOT" in printed.stdout  # the assets' {"published": False}, compiled by the ORM
        assert manage("reclaim", "init").returncode == 0
        cycle = manage("reclaim", "run", "--json")
        assert cycle.returncode == 0, cycle.stderr
        report = json.loads(cycle.stdout)
        assert {c["collection"] for c in report["collections"]} >= {"uploads", "assetblobs", "assets"}
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()
