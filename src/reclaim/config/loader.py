"""Reading the TOML file: ``${ENV_VAR}`` interpolation, validation, clear errors."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reclaim.config.model import Config
from reclaim.config.paths import resolve_paths
from reclaim.config.secrets import is_secret_option, mask_url, register_secret
from reclaim.errors import ConfigError

__all__ = ["load_config", "parse_config"]

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
    """Validate configuration given as TOML text; see :func:`load_config`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from None
    raw = _interpolate(raw, "", path)
    _register_secrets(raw)
    catalog = raw.setdefault("catalog", {})
    if isinstance(catalog, dict) and not catalog.get("url"):
        base = Path(path).resolve().parent if path else Path.cwd()
        catalog["url"] = f"sqlite:///{base / CATALOG_FILE}"
    raw["source_path"] = path
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise _config_error(exc, path) from None


def _interpolate(value: Any, field: str, path: str | None) -> Any:
    """Replace ``${VAR}`` in every string; ``$$`` is a literal ``$``."""
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{field}.{k}" if field else k, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{field}[{i}]", path) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        if name not in os.environ:
            raise ConfigError(f"environment variable ${{{name}}} is not set", field=field, path=path)
        secret = os.environ[name]
        register_secret(secret)  # whatever comes from the environment is treated as a secret
        return secret

    return _ENV.sub(substitute, value)


def _register_secrets(raw: dict[str, Any]) -> None:
    """Register URL passwords and secret storage options so messages never show them."""
    sections = [raw.get("catalog", {}), *raw.get("databases", {}).values()]
    for section in sections:
        url = section.get("url") if isinstance(section, dict) else None
        if isinstance(url, str):
            match = re.match(r"^[^:]+://[^:/@]*:([^@]*)@", url)
            if match:
                register_secret(match.group(1))
    for store in raw.get("stores", {}).values():
        options = store.get("storage_options", {}) if isinstance(store, dict) else {}
        if isinstance(options, dict):
            for key, option in options.items():
                if isinstance(option, str) and is_secret_option(key):
                    register_secret(option)


def _config_error(exc: ValidationError, path: str | None) -> ConfigError:
    problems = []
    first_field: str | None = None
    first_value: object = None
    for error in exc.errors():
        field = _dotted(error["loc"])
        value = error.get("input")
        shown = _show(field, value)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see the configuration reference)"
        if error["type"] == "missing":
            problems.append(f"{field}: required field is missing")
        elif isinstance(value, (dict, list)):
            problems.append(f"{field}: {message}")
        else:
            problems.append(f"{field}: {message} (got {shown})")
        if first_field is None:
            first_field, first_value = field, value
    text = "; ".join(problems)
    result = ConfigError(f"invalid configuration: {text}", path=path)
    result.field = first_field
    result.value = first_value
    return result


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _show(field: str, value: object) -> str:
    leaf = field.rsplit(".", 1)[-1]
    if isinstance(value, str):
        if is_secret_option(leaf) and leaf != "url":
            return "'***'"
        return repr(mask_url(value))
    return repr(value)
