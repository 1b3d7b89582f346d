"""Moving the objects of the in-process S3 test server (moto) back in time.

S3 sets LastModified itself and no S3 API changes it, so a test that simulates
nights on a bucket reaches into moto's in-memory backend: every version of
every key and every delete marker is made ``delta`` older. Only the S3 server
of ``tests/conftest.py`` (a ``ThreadedMotoServer`` in this process) can be
moved this way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any


def _bucket(name: str) -> Any:
    from moto.s3.models import s3_backends

    partition, account = s3_backends.bucket_accounts[name]
    return s3_backends[account][partition].buckets[name]


def age_bucket(name: str, delta: timedelta) -> int:
    """Make every object version and delete marker of bucket ``name`` ``delta`` older; how many."""
    moved = 0
    for _key, versions in _bucket(name).keys.iterlists():
        for version in versions:
            version.last_modified -= delta
            moved += 1
    return moved


def backdate(name: str, ages: Mapping[str, timedelta]) -> None:
    """Set the current version of each key to ``ages[key]`` old, relative to its LastModified now."""
    keys = _bucket(name).keys
    for key, age in ages.items():
        keys[key].last_modified -= age
