"""Bad configuration ends in a ConfigError naming the field, never a traceback, and never echoes a secret."""

from __future__ import annotations

import pytest

from reclaim.config import parse_config, parse_duration
from reclaim.errors import ConfigError

from .samples import minimal_config

SECRET = "Zq9-PGSECRET-7731"


def config(*, db: str = "", store: str = "") -> str:
    return minimal_config(db=db, store=store)


BAD_VALUES = [
    (config(store="min_age = inf"), "stores.blobs.min_age"),
    (config(store="min_age = nan"), "stores.blobs.min_age"),
    (config(store='min_age = "99999999999d"'), "stores.blobs.min_age"),
    (config(store="min_age = 1e300"), "stores.blobs.min_age"),
    (config(store="grace = {}"), "stores.blobs.grace"),
    (config(store="grace = []"), "stores.blobs.grace"),
    (config(store='grace = "\u0661\u0662h"'), "stores.blobs.grace"),  # Arabic-Indic "12h"
    (config(store='grace = "\uff11\uff12h"'), "stores.blobs.grace"),  # fullwidth "12h"
    (config(db="connect_timeout = { a = 1 }"), "databases.app.connect_timeout"),
    ('stores = "x"', "stores"),
    ('databases = "x"', "databases"),
    ('catalog = "x"', "catalog"),
    ("collections = 3", "collections"),
    ('[stores]\nblobs = "x"', "stores.blobs"),
    ('[databases]\napp = ["x"]', "databases.app"),
    (
        config().replace("sqlite:///app.sqlite", "postgresql+nodriver://gc:pw@db/x"),
        "databases.app.url",
    ),
    (
        config().replace("sqlite:///app.sqlite", "postgresql+psycopg://gc:pw@db:notaport/x"),
        "databases.app.url",
    ),
    (
        config().replace("sqlite:///app.sqlite", "postgresql+psycopg://gc:pw@db:99999/x"),
        "databases.app.url",
    ),
    ('[catalog]\nurl = "mysql+nodriver://gc@db/x"\n' + config(), "catalog.url"),
    ('[catalog]\nurl = "postgresql+psycopg://gc@db:port/x"\n' + config(), "catalog.url"),
    ('[catalog]\nurl = "ftp://db/x"\n' + config(), "catalog.url"),
    (config(store='age = "since-unreferenced"'), "stores.blobs.age"),
    (config(store="age = true"), "stores.blobs.age"),
    (
        config() + '[collections.a]\ndatabase = "app"\ntable = "t"\nage_column = "c"\nage = "never"\n',
        "collections.a.age",
    ),
    (
        config() + '[collections.a]\ndatabase = "app"\ntable = "t"\nage_column = "c"\nsize_column = "a b"\n',
        "collections.a.size_column",
    ),
]


@pytest.mark.parametrize(
    ("text", "field"), BAD_VALUES, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD_VALUES)]
)
def test_bad_values_are_config_errors_naming_the_field(text: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, path="reclaim.toml")
    assert info.value.field == field
    assert field in str(info.value)
    assert "reclaim.toml" in str(info.value)


@pytest.mark.parametrize("text", ["\u0661\u0662h", "\u0967d", "\uff17d", "1\u00b2h"])
def test_only_ascii_digits_make_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_an_environment_secret_in_a_wrong_field_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECLAIM_TEST_WRONG_FIELD", SECRET)
    text = config(db='connect_timeout = "${RECLAIM_TEST_WRONG_FIELD}"')
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    error = info.value
    assert error.field == "databases.app.connect_timeout"
    assert "is not a duration" in str(error)
    for seen in (str(error), repr(error), repr(error.value), repr(error.args), repr(vars(error))):
        assert SECRET not in seen
    assert error.__context__ is None  # no pydantic error holding the raw input is chained to it


def test_a_literal_secret_in_a_bad_url_is_not_kept_in_the_error() -> None:
    url = f"postgresql+nodriver://gc:{SECRET}@db/x?password={SECRET}"
    with pytest.raises(ConfigError) as info:
        parse_config(config().replace("sqlite:///app.sqlite", url))
    error = info.value
    for seen in (str(error), repr(error.value), repr(error.args)):
        assert SECRET not in seen
    assert error.__context__ is None


def test_a_storage_secret_next_to_a_bad_value_is_not_kept_in_the_error() -> None:
    options = f'{{ secret = "{SECRET}", client_kwargs = {{ token = "{SECRET}" }} }}'
    text = config(store=f"storage_options = {options}")
    text = text.replace("[[stores", "colour = 3\n[[stores")
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value.value)
    with pytest.raises(ConfigError) as info:
        parse_config(config(store=f'storage_options = {{ secret = "{SECRET}" }}\nstorage_options_x = 1'))
    assert SECRET not in str(info.value)
