"""Configuration texts shared by the tests: one database ``app``, one store ``blobs``, one reference.

``minimal_config()`` is the smallest valid configuration; its keywords add
lines to a section (``db``, ``store``, ``reference``), change the URLs, or
append whole sections (``tail``). Tests that check how one field is parsed
change just that field of it, so every configuration in the suite starts
from the same valid one.
"""

from __future__ import annotations


def minimal_config(
    *,
    db_url: str = "sqlite:///app.sqlite",
    db: str = "",
    store_url: str = "file:///srv/blobs",
    store: str = "",
    reference: str = "",
    tail: str = "",
) -> str:
    """The minimal configuration, with extra lines for its sections and whole sections after it."""
    return f"""
[databases.app]
url = "{db_url}"
{db}

[stores.blobs]
url = "{store_url}"
{store}

[[stores.blobs.references]]
database = "app"
table = "assets"
column = "blob_key"
{reference}
{tail}"""


MINIMAL = minimal_config()
