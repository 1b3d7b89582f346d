"""A dry-run cycle says what the real cycle then does: as JSON, as text, and in fact.

Issue 13: on a DANDI-like night (objects quarantined in ``mark`` mode, row
collections with retention) ``run --dry-run`` said "would purge 2" while the
cycle's JSON said 0. The purge preview re-checked the references but, unlike
the purge itself, did not look whether a ``mark`` object was replaced since its
quarantine (such an object is live again and is left alone): the dry run
counted it as "would purge". Real processes, every dialect.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import reclaim

from .world import DAY, World, naive

BLOBS = """
[collections.blobs]
database = "app"
table = "blobs"
age_column = "created"
min_age = "7d"
retention = "30d"
"""


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(Path(reclaim.__file__).parents[1])},
        timeout=120,
        check=False,
    )


def test_a_dry_run_cycle_counts_what_the_cycle_then_purges(world: World) -> None:
    world.collections = BLOBS
    world.store_options = 'mode = "mark"'
    world.write_config()
    for key in ("orphans/1", "orphans/2", "orphans/3"):
        world.put(key)
    world.insert("blobs", {"id": 1, "blob": "blobs/0001", "created": naive(world.now - 9 * DAY)})
    world.put("blobs/0001")
    first = reclaim.run(world.config_path)  # marks the three orphans (grace 0), archives blob row 1
    assert [q.quarantined.count for q in first.quarantined] == [3]
    # a writer stores a new object at a quarantined key: live again, never purged
    path = world.store_dir / "orphans/3"
    path.write_bytes(b"a new upload")
    os.utime(path, (time.time() - 20 * 86400, time.time() - 20 * 86400))

    config = str(world.config_path)
    text = _cli("run", "-c", config, "--dry-run", cwd=world.root)
    as_json = _cli("run", "-c", config, "--dry-run", "--json", cwd=world.root)
    assert text.returncode == as_json.returncode == 0, text.stderr + as_json.stderr
    [preview] = json.loads(as_json.stdout)["purged"]
    assert (preview["due"], preview["purged"]["count"], preview["changed"]) == (3, 2, 1)
    words = " ".join(text.stdout.split())
    assert "would purge 2 objects" in words
    assert "would leave 1 changed since quarantine" in words

    real = json.loads(_cli("run", "-c", config, "--json", cwd=world.root).stdout)
    [purged] = real["purged"]
    assert (purged["due"], purged["purged"]["count"], purged["changed"]) == (3, 2, 1)
    assert world.objects() == ["blobs/0001", "orphans/3"]
