"""Configuration: parsing, validation errors that name the field, secrets, durations."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reclaim.config import format_duration, load_config, parse_config, parse_duration, redact
from reclaim.errors import ConfigError

from .samples import MINIMAL


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("36h", timedelta(hours=36)),
        ("90m", timedelta(minutes=90)),
        ("30s", timedelta(seconds=30)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("0", timedelta(0)),
        (3600, timedelta(hours=1)),
    ],
)
def test_durations_parse(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["7", "7x", "d7", "-1d", "", "1.5d", "seven days"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**8))
def test_durations_round_trip(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


def test_minimal_config_has_defaults(tmp_path: Path) -> None:
    path = tmp_path / "reclaim.toml"
    path.write_text(MINIMAL)
    config = load_config(path)
    store = config.stores["blobs"]
    assert store.min_age == timedelta(days=7)
    assert store.grace == timedelta(days=7)
    assert store.trash_prefix == "_trash/"
    assert store.max_fraction == 0.5
    assert store.action == "collect"
    assert store.mode is None
    assert config.catalog.url == f"sqlite:///{tmp_path / 'reclaim-catalog.sqlite'}"
    assert store.references[0].display_name(0) == "app.assets.blob_key"


@pytest.mark.parametrize(
    ("patch", "field", "fragment"),
    [
        ('min_age = "7x"', "stores.blobs.min_age", "'7x'"),
        ('mode = "shred"', "stores.blobs.mode", "'shred'"),
        ("max_fraction = 1.5", "stores.blobs.max_fraction", "1.5"),
        ('trash_prefix = "/abs/"', "stores.blobs.trash_prefix", "'/abs/'"),
        ('trash_prefix = "../up/"', "stores.blobs.trash_prefix", "'../up/'"),
        ('action = "delete"', "stores.blobs.action", "'delete'"),
        ("colour = 3", "stores.blobs.colour", "unknown field"),
    ],
)
def test_errors_name_file_field_and_value(tmp_path: Path, patch: str, field: str, fragment: str) -> None:
    path = tmp_path / "reclaim.toml"
    path.write_text(MINIMAL.replace('url = "file:///srv/blobs"', f'url = "file:///srv/blobs"\n{patch}'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert field in message
    assert fragment in message
    assert info.value.field == field


def test_reference_shape_errors() -> None:
    text = MINIMAL.replace('column = "blob_key"', 'column = "blob_key"\nquery = "SELECT 1"')
    with pytest.raises(ConfigError, match=r"stores\.blobs\.references\[0\].*not both"):
        parse_config(text)
    text = MINIMAL.replace('database = "app"', 'database = "nope"')
    with pytest.raises(ConfigError, match="'nope' is not defined under \\[databases\\]"):
        parse_config(text)
    text = MINIMAL.replace('column = "blob_key"', 'column = "blob key; DROP TABLE x"')
    with pytest.raises(ConfigError, match=r"references\[0\]\.column"):
        parse_config(text)


def test_reference_into_trash_is_rejected() -> None:
    text = MINIMAL.replace('column = "blob_key"', 'column = "blob_key"\nadd_prefix = "_trash/old/"')
    with pytest.raises(ConfigError, match="trash prefix"):
        parse_config(text)


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_config("[stores\nurl=", path="broken.toml")
    with pytest.raises(ConfigError, match=r"file not found.*reclaim init"):
        load_config(tmp_path / "absent.toml")


def test_env_interpolation_and_secret_masking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECLAIM_TEST_PW", "s3cr3t-pa55")
    text = MINIMAL.replace(
        'url = "sqlite:///app.sqlite"', 'url = "postgresql+psycopg://gc:${RECLAIM_TEST_PW}@db/archive"'
    )
    config = parse_config(text)
    assert config.databases["app"].url == "postgresql+psycopg://gc:s3cr3t-pa55@db/archive"
    assert (
        redact(f"failed: {config.databases['app'].url}") == "failed: postgresql+psycopg://gc:***@db/archive"
    )
    assert "s3cr3t-pa55" not in redact("token s3cr3t-pa55 leaked")
    assert parse_config(MINIMAL.replace("assets", "as$$ets"), path=None).stores["blobs"].references[0].table


def test_missing_env_var_names_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECLAIM_TEST_MISSING", raising=False)
    text = MINIMAL.replace('"sqlite:///app.sqlite"', '"postgresql+psycopg://gc:${RECLAIM_TEST_MISSING}@db/x"')
    with pytest.raises(
        ConfigError, match=r"databases\.app\.url: environment variable \$\{RECLAIM_TEST_MISSING\}"
    ):
        parse_config(text)


def test_bad_database_url_is_masked() -> None:
    text = MINIMAL.replace('"sqlite:///app.sqlite"', '"oracle://admin:topsecretpw@db/x"')
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert "topsecretpw" not in str(info.value)
    assert "databases.app.url" in str(info.value)


def test_secret_storage_options_are_masked() -> None:
    text = MINIMAL.replace(
        'url = "file:///srv/blobs"',
        'url = "s3://b/"\nstorage_options = { secret = "AKIAVERYSECRET", mode = 3 }',
    ).replace("[[stores", 'min_age = "bad"\n[[stores')
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert "AKIAVERYSECRET" not in redact(str(info.value))
    assert "AKIAVERYSECRET" not in redact("boto said: AKIAVERYSECRET rejected")
