"""Writing the built configuration as a ``reclaim.toml`` (``manage.py reclaim config``).

Credentials never appear: a database URL's password becomes
``${RECLAIM_<ALIAS>_PASSWORD}`` and a storage credential
``${RECLAIM_<STORE>_<OPTION>}``, for the operator to set when the file is used
on its own.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa

from reclaim.config.secrets import is_secret_option

__all__ = ["dump_config"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_HEADER = """\
# reclaim.toml equivalent to this Django project's settings and models
# (printed by 'manage.py reclaim config'). Credentials are ${VARIABLES}: set them
# in the environment to use this file with the plain 'reclaim' command.
"""


def _variable(*parts: str) -> str:
    name = "_".join(re.sub(r"[^A-Za-z0-9]+", "_", p).strip("_").upper() for p in parts)
    return "${RECLAIM_" + name + "}"


def _placeholder_url(url: str, alias: str) -> str:
    if "://" not in url or url.startswith("sqlite"):
        return url
    parsed = sa.make_url(url.replace("$$", "$"))
    if parsed.password is None:
        return url
    placeholder = "PASSWORD-PLACEHOLDER"
    rendered = parsed.set(password=placeholder).render_as_string(hide_password=False)
    return rendered.replace("$", "$$").replace(placeholder, _variable(alias, "password"))


def _placeholder_options(options: Any, store: str, path: str = "") -> Any:
    if isinstance(options, dict):
        out = {}
        for key, value in options.items():
            if isinstance(value, str) and is_secret_option(str(key)) and "${" not in value:
                out[key] = _variable(store, path, str(key)) if path else _variable(store, str(key))
            else:
                out[key] = _placeholder_options(value, store, f"{path}_{key}" if path else "")
        return out
    return options


def dump_config(raw: dict[str, Any]) -> str:
    """TOML text of ``raw`` with every credential replaced by a ``${VAR}``."""
    lines = [_HEADER]
    catalog = dict(raw.get("catalog") or {})
    if "url" in catalog:
        shared = [a for a, d in (raw.get("databases") or {}).items() if d.get("url") == catalog["url"]]
        catalog["url"] = _placeholder_url(str(catalog["url"]), shared[0] if shared else "catalog")
    _table(lines, "catalog", catalog)
    for alias, database in (raw.get("databases") or {}).items():
        database = dict(database)
        database["url"] = _placeholder_url(str(database["url"]), alias)
        _table(lines, f"databases.{_key(alias)}", database)
    for name, store in (raw.get("stores") or {}).items():
        store = dict(store)
        references = store.pop("references", [])
        if "storage_options" in store:
            store["storage_options"] = _placeholder_options(store["storage_options"], name)
        _table(lines, f"stores.{_key(name)}", store)
        for ref in references:
            _table(lines, f"stores.{_key(name)}.references", ref, array=True)
    for name, collection in (raw.get("collections") or {}).items():
        collection = dict(collection)
        references = collection.pop("references", [])
        _table(lines, f"collections.{_key(name)}", collection)
        for ref in references:
            _table(lines, f"collections.{_key(name)}.references", ref, array=True)
    return "\n".join(lines).rstrip() + "\n"


def _table(lines: list[str], header: str, values: dict[str, Any], *, array: bool = False) -> None:
    lines.append(f"[[{header}]]" if array else f"[{header}]")
    for key, value in values.items():
        if value is not None:
            lines.append(f"{_key(key)} = {_value(value)}")
    lines.append("")


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
