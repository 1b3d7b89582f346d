"""``manage.py reclaim ...`` end to end in a subprocess: the CLI's commands, output and exit codes."""

from __future__ import annotations

import json

from django_fixtures import Project


def _orphan(project: Project, key: str) -> None:
    project.s3().put_object(Bucket=project.bucket, Key=f"media/{key}", Body=b"orphan")  # type: ignore[attr-defined]


def test_manage_py_reclaim_runs_the_cli_with_the_projects_configuration(fresh: Project) -> None:
    _orphan(fresh, "blobs/lost.dat")

    scan = fresh.manage("reclaim", "scan", "--json")
    assert scan.returncode == 0, scan.stderr
    stores = {s["store"]: s for s in json.loads(scan.stdout)["stores"]}
    assert stores["default"]["candidates"]["count"] == 1

    cycle = fresh.manage("reclaim", "run", "--json")
    assert cycle.returncode == 0, cycle.stderr
    assert json.loads(cycle.stdout)["run_id"] is not None

    unknown = fresh.manage("reclaim", "restore", "blobs/never-there.dat", "--store", "default")
    assert unknown.returncode == 8, unknown.stderr
    restored = fresh.manage("reclaim", "restore", "blobs/lost.dat", "--store", "default", "--json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["restored"]["default"]["restored"] == 1

    runs = fresh.manage("reclaim", "runs", "--json")
    assert [r["command"] for r in json.loads(runs.stdout)][:3] == ["restore", "restore", "run"]
    lock = fresh.manage("reclaim", "lock", "--json")
    assert lock.returncode == 0, lock.stderr
    for output in (scan, cycle, restored, runs, lock):
        assert "pg-password-only-in-settings" not in output.stdout + output.stderr
        assert "s3-secret-only-in-settings" not in output.stdout + output.stderr


def test_manage_py_reclaim_config_prints_the_equivalent_toml(fresh: Project) -> None:
    printed = fresh.manage("reclaim", "config")
    assert printed.returncode == 0, printed.stderr
    assert "[stores.default]" in printed.stdout
    assert 'table = "archive_assetblob"' in printed.stdout
    assert "pg-password-only-in-settings" not in printed.stdout


def test_a_bad_setting_is_exit_code_2_naming_it(fresh: Project) -> None:
    env = dict(fresh.env, RECLAIM_DJ_BAD_COLLECTION="archive.Nothing")
    bad = Project(env, fresh.bucket, fresh.endpoint, fresh.media, fresh.database_url)
    result = bad.manage("reclaim", "scan")
    assert result.returncode == 2
    assert "archive.Nothing" in result.stderr
    assert "RECLAIM['collections']['bad']" in result.stderr
