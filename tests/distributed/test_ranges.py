"""Key ranges: every key in exactly one range, whatever the split points; the package's public names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import reclaim.distributed
from reclaim.errors import ConfigError
from reclaim.stores.partitioned import KeyRange, just_below

keys = st.text(alphabet="ab/é~\U0010ffff", min_size=1, max_size=6).filter(
    lambda k: not k.startswith("/") and "//" not in k
)


@given(st.lists(keys, max_size=5), st.lists(keys, max_size=20))
def test_every_key_falls_in_exactly_one_range(boundaries: list[str], listed: list[str]) -> None:
    ranges = KeyRange.split(boundaries)
    assert len(ranges) == len(set(boundaries)) + 1
    for key in listed:
        assert sum(key in r for r in ranges) == 1, (key, ranges)
    for r in ranges:
        if r.first is not None:
            start = r.start_after
            assert start is None or start < r.first  # a range listing starts below its first key
            assert just_below(r.first) == start


def test_an_empty_or_inverted_range_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        KeyRange("b", "a")
    with pytest.raises(ValueError, match="empty"):
        KeyRange("", None)
    with pytest.raises(ConfigError, match="partitions must be at least 1"):
        reclaim.distributed.split(None, partitions=0)  # type: ignore[arg-type]


def test_the_public_names() -> None:
    assert sorted(reclaim.distributed.__all__) == [
        "ConfigSpec",
        "Dispatcher",
        "InProcess",
        "RangeTask",
        "run",
        "run_range",
        "scan",
        "split",
    ]
