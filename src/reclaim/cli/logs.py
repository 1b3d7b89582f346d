"""Logging for the command line: level, format and destination, every record redacted.

The library logs through :mod:`logging` and configures nothing; the CLI sets up
one handler on the ``reclaim`` logger's root from ``--verbose``, ``--log-format``,
``--log-file`` and ``RECLAIM_LOG_LEVEL``. Its formatter passes the finished text
(message, arguments, traceback) through :func:`reclaim.config.redact`, so no
record, from reclaim or from a storage library it calls, can carry a secret out
(invariant 9). That formatter is the one place where log text is redacted.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from reclaim.config import redact
from reclaim.errors import ConfigError

__all__ = ["LOG_LEVEL_ENV", "configure_logging"]

LOG_LEVEL_ENV = "RECLAIM_LOG_LEVEL"
LogFormat = Literal["text", "json"]

#: ``-v`` shows what reclaim did (lease, runs); ``-vv`` everything, libraries included
_BY_VERBOSITY = {0: logging.WARNING, 1: logging.INFO}
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}


class RedactingFormatter(logging.Formatter):
    """Formats a record as text or one JSON object per line, then masks every secret in it."""

    def __init__(self, log_format: LogFormat) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.log_format = log_format

    def format(self, record: logging.LogRecord) -> str:
        if self.log_format == "text":
            return redact(super().format(record))
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        # redacting the serialized line also covers secrets JSON escaping left intact
        return redact(json.dumps(document, default=str))


def _level(verbose: int) -> int:
    if verbose:
        return _BY_VERBOSITY.get(verbose, logging.DEBUG)
    name = os.environ.get(LOG_LEVEL_ENV, "").strip().upper()
    if not name:
        return logging.WARNING
    if name not in _LEVELS:
        levels = ", ".join(_LEVELS)
        raise ConfigError(f"{name!r} is not a log level; use one of {levels}", field=LOG_LEVEL_ENV)
    return _LEVELS[name]


def configure_logging(verbose: int = 0, log_format: LogFormat = "text", log_file: Path | None = None) -> None:
    """Send log records to stderr (or ``log_file``, appended) at the level asked for.

    ``verbose`` 1 is INFO, 2 or more DEBUG; without it ``RECLAIM_LOG_LEVEL``
    (DEBUG, INFO, WARNING, ERROR) decides, default WARNING. At DEBUG every
    library's records are shown, otherwise only reclaim's and warnings. Raises
    :class:`ConfigError` for an unknown level or a log file that cannot be opened.
    """
    level = _level(verbose)
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        try:
            handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot open the log file: {exc.strerror}", field="--log-file") from None
    handler.setFormatter(RedactingFormatter(log_format))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h.formatter, RedactingFormatter)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level if level == logging.DEBUG else logging.WARNING)
    logging.getLogger("reclaim").setLevel(level)
