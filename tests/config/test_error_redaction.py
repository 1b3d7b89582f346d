"""Error messages are redacted where the error is made: no raise site can forget it."""

from __future__ import annotations

import pytest

from reclaim.config.secrets import register_secret
from reclaim.errors import (
    CatalogError,
    CollectionError,
    ConfigError,
    ReclaimError,
    SourceError,
    StoreError,
    UnsafeToProceed,
)

SECRET = "Zq9-distinctive-Secret"

MAKERS = {
    "ReclaimError": lambda text: ReclaimError(text),
    "ConfigError": lambda text: ConfigError(text, field="x"),
    "SourceError": lambda text: SourceError("refs", text),
    "StoreError": lambda text: StoreError("blobs", text, key="a/key"),
    "CollectionError": lambda text: CollectionError("assets", text),
    "CatalogError": lambda text: CatalogError(text),
    "UnsafeToProceed": lambda text: UnsafeToProceed(text, store="blobs"),
}


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_a_url_password_in_a_driver_message_is_masked(kind: str) -> None:
    exc = MAKERS[kind](f"OperationalError: could not connect to postgresql://gc:{SECRET}@db:5432/archive")
    assert SECRET not in str(exc)
    assert "postgresql://gc:***@db:5432/archive" in str(exc)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_a_registered_secret_is_masked_and_the_rest_is_kept(kind: str) -> None:
    register_secret(SECRET)
    key = "_hash/hoa/q4gfwyb36leozblzmove7vxqha"
    exc = MAKERS[kind](f"ClientError: signature {SECRET} rejected for key {key}")
    assert SECRET not in str(exc)
    assert key in str(exc)  # keys are never altered


def test_attributes_are_left_as_they_are() -> None:
    register_secret(SECRET)
    exc = StoreError("blobs", "failed", key=f"uploads/{SECRET}")
    assert exc.key == f"uploads/{SECRET}"  # the key names the object: the attribute is exact
