"""The inventory listing's settings: validated when the configuration loads, errors naming the store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reclaim.config import parse_config
from reclaim.errors import ConfigError

BASE = """
[databases.app]
url = "sqlite:///app.sqlite"
[stores.blobs]
url = "{url}"
{extra}
"""


def config(extra: str, url: str = "s3://archive/blobs/") -> str:
    return BASE.format(url=url, extra=extra)


def test_an_inventory_listing_loads_with_its_defaults() -> None:
    loaded = parse_config(config('listing = "inventory"\ninventory = "s3://inv/reports/archive/daily/"'))
    store = loaded.stores["blobs"]
    assert (store.listing, store.inventory) == ("inventory", "s3://inv/reports/archive/daily/")
    assert store.max_inventory_age == timedelta(hours=48)
    assert parse_config(config("")).stores["blobs"].listing == "list"


@pytest.mark.parametrize(
    ("extra", "url", "message"),
    [
        ('listing = "inventory"', "s3://archive/blobs/", "needs inventory ="),
        (
            'listing = "inventory"\ninventory = "s3://inv/x/archive/daily/"',
            "file:///srv",
            "needs an s3:// store",
        ),
        (
            'listing = "inventory"\ninventory = "s3://inv/x/other/daily/"',
            "s3://archive/",
            "not a report of bucket",
        ),
        ('listing = "inventory"\ninventory = "/local/archive/daily/"', "s3://archive/", "must be s3://"),
        ('inventory = "s3://inv/x/archive/daily/"', "s3://archive/", 'listing is not "inventory"'),
        (
            'listing = "inventory"\ninventory = "s3://i/archive/d/"\nmax_inventory_age = "0"',
            "s3://archive/",
            "positive",
        ),
        ('listing = "snapshot"', "s3://archive/", "listing"),
    ],
)
def test_bad_inventory_settings_are_refused(extra: str, url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(config(extra, url))
    assert "stores.blobs" in str(caught.value)
