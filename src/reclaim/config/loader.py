"""Reading the TOML file: ``${ENV_VAR}`` interpolation, validation, clear errors."""

from __future__ import annotations

import copy
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reclaim.config.model import Config
from reclaim.config.paths import resolve_paths
from reclaim.config.secrets import (
    MASK,
    install_log_filter,
    is_secret_option,
    mask_options,
    redact,
    register_secret,
    url_secrets,
)
from reclaim.errors import ConfigError

__all__ = ["load_config", "parse_config", "validate_config"]

_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
CATALOG_FILE = "reclaim-catalog.sqlite"


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a ``reclaim.toml``.

    Raises :class:`ConfigError` naming the file, the field and the bad value when
    the file is missing, is not TOML, refers to an unset environment variable or
    fails validation. Relative paths in it resolve against the file's directory
    (see :mod:`reclaim.config.paths`).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found; create one with 'reclaim init'", path=str(file)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", path=str(file)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(file)) from None
    return resolve_paths(parse_config(text, path=str(file)))


def parse_config(text: str, *, path: str | None = None) -> Config:
    """Validate configuration given as TOML text; see :func:`load_config`.

    Raises :class:`ConfigError`, with every secret and every substituted value
    masked in its message and ``value``, and no exception holding the raw input
    chained to it (it is raised outside any ``except`` block).
    """
    install_log_filter()
    result = _parse(text, path)
    if isinstance(result, ConfigError):
        raise result
    return result


def validate_config(raw: dict[str, Any], *, path: str | None = None) -> Config:
    """Validate configuration given as data: the tables of a TOML file, or built by an adapter.

    The same steps as :func:`parse_config` after the TOML is read
    (``${ENV_VAR}`` interpolation, registration of every secret, validation);
    raises :class:`ConfigError` the same way. ``raw`` is not modified.
    """
    install_log_filter()
    result = _validate(copy.deepcopy(raw), path)
    if isinstance(result, ConfigError):
        raise result
    return result


def _parse(text: str, path: str | None) -> Config | ConfigError:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return ConfigError(f"not valid TOML: {exc}", path=path)
    return _validate(raw, path)


def _validate(raw: dict[str, Any], path: str | None) -> Config | ConfigError:
    substituted: list[str] = []
    raw = _interpolate(raw, "", path, substituted)
    _register_secrets(raw)
    shape = _shape_error(raw, path)
    if shape is not None:
        return shape
    catalog = raw.setdefault("catalog", {})
    if not catalog.get("url"):
        base = Path(path).resolve().parent if path else Path.cwd()
        catalog["url"] = f"sqlite:///{base / CATALOG_FILE}"
    raw["source_path"] = path
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        return _config_error(exc, path, substituted)


def _shape_error(raw: dict[str, Any], path: str | None) -> ConfigError | None:
    """Sections that must be tables, checked before anything walks into them."""
    for section in ("catalog", "databases", "stores", "collections"):
        if section in raw and not isinstance(raw[section], dict):
            return ConfigError(
                f"must be a table ([{section}]), not {type(raw[section]).__name__}", field=section, path=path
            )
    for section in ("databases", "stores", "collections"):
        for name, value in raw.get(section, {}).items():
            if not isinstance(value, dict):
                return ConfigError(
                    f"must be a table ([{section}.{name}]), not {type(value).__name__}",
                    field=f"{section}.{name}",
                    path=path,
                )
    return None


def _interpolate(value: Any, field: str, path: str | None, substituted: list[str]) -> Any:
    """Replace ``${VAR}`` in every string; ``$$`` is a literal ``$``; note each value put in."""
    if isinstance(value, dict):
        return {
            k: _interpolate(v, f"{field}.{k}" if field else k, path, substituted) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, f"{field}[{i}]", path, substituted) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        if name not in os.environ:
            raise ConfigError(f"environment variable ${{{name}}} is not set", field=field, path=path)
        # not registered as a secret: only values in secret positions are (see _register_secrets),
        # so that a key or row that happens to contain, say, "move" is never altered; validation
        # errors mask every substituted value all the same
        substituted.append(os.environ[name])
        return os.environ[name]

    return _ENV.sub(substitute, value)


def _register_secrets(raw: dict[str, Any]) -> None:
    """Register URL credentials and secret storage options so messages never show them."""
    sections = [raw.get("catalog"), *_tables(raw.get("databases")), *_tables(raw.get("stores"))]
    for section in sections:
        url = section.get("url") if isinstance(section, dict) else None
        if isinstance(url, str):
            for secret in url_secrets(url):
                register_secret(secret)
    for store in _tables(raw.get("stores")):
        _register_options(store.get("storage_options"))
    dashboard = raw.get("dashboard")
    token = dashboard.get("token") if isinstance(dashboard, dict) else None
    if isinstance(token, str):
        register_secret(token)


def _tables(section: object) -> list[dict[str, Any]]:
    if not isinstance(section, dict):
        return []
    return [value for value in section.values() if isinstance(value, dict)]


def _register_options(options: object) -> None:
    if isinstance(options, dict):
        for key, option in options.items():
            if isinstance(option, dict | list):
                _register_options(option)
            elif isinstance(option, str):
                if is_secret_option(str(key)):
                    register_secret(option)
                for secret in url_secrets(option):
                    register_secret(secret)
    elif isinstance(options, list):
        for item in options:
            _register_options(item)


def _config_error(exc: ValidationError, path: str | None, substituted: list[str]) -> ConfigError:
    problems = []
    first_field: str | None = None
    first_value: object = None
    for error in exc.errors():
        field = _dotted(error["loc"])
        value = error.get("input")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see the configuration reference)"
        if error["type"] == "missing":
            problems.append(f"{field}: required field is missing")
        elif isinstance(value, (dict, list)):
            problems.append(f"{field}: {message}")
        else:
            problems.append(f"{field}: {message} (got {_show(field, value)})")
        if first_field is None:
            first_field, first_value = field, value
    text = _mask(f"invalid configuration: {'; '.join(problems)}", substituted)
    result = ConfigError(text, path=path)
    result.field = first_field
    result.value = _masked_value(first_field or "", first_value, substituted)
    return result


def _mask(text: str, substituted: list[str]) -> str:
    """Redact ``text``, and hide every ``${VAR}`` value too: a secret may sit in the wrong field."""
    text = redact(text)
    for value in sorted((v for v in substituted if v.strip()), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def _masked_value(field: str, value: object, substituted: list[str]) -> object:
    leaf = field.rsplit(".", 1)[-1]
    if isinstance(value, str):
        return MASK if _secret_field(leaf) else _mask(value, substituted)
    if isinstance(value, dict | list):
        masked = mask_options(value)
        return _deep(masked, lambda text: _mask(text, substituted))
    return value


def _deep(value: Any, mask: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v, mask) for v in value]
    return mask(value) if isinstance(value, str) else value


def _secret_field(leaf: str) -> bool:
    return is_secret_option(leaf) and leaf != "url"


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, str) and "[" in part:
            continue  # pydantic's name of a union's branch (``list[...]``, ``literal['ignore']``)
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _show(field: str, value: object) -> str:
    leaf = field.rsplit(".", 1)[-1]
    if isinstance(value, str) and _secret_field(leaf):
        return repr(MASK)
    return repr(value)
