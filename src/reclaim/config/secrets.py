"""Keeping secrets out of every message, report and log record (invariant 9): the one choke point.

What is a secret, and nothing else:

- the password of a URL (``scheme://user:password@host``) and the value of a
  credential parameter in its query string (``?password=``, ``sslpassword``,
  ``token``, ``secret``, ``key``, ``sig``...);
- the value of a storage option whose name says it is a credential (``key``,
  ``secret``, ``token``, ``session_token``, ``aws_secret_access_key``,
  ``client_secret``, ``account_key``, ``sas_token``, ``connection_string``...),
  at any depth (``client_kwargs``);
- in log records only, credential patterns a backend may print by itself
  (botocore's ``Credential=AKIA...``, ``X-Amz-Security-Token`` and
  ``Signature``), since those credentials may come from the environment and
  never pass through the configuration.

The configuration loader registers the secrets it finds (wherever they came
from: a literal or a ``${ENV_VAR}``) with :func:`register_secret`;
:func:`redact` masks URLs structurally and every registered secret, and is what
every message, report and catalog write passes through. Values that are not
secrets (keys, row values, other substituted variables such as
``mode = "${RECLAIM_MODE}"``) are never altered. :class:`SecretFilter`, installed
by :func:`install_log_filter` on reclaim's loggers and those of the storage
libraries, applies the same masking to every log record.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Mapping
from typing import Any

from reclaim.errors import use_redactor

__all__ = [
    "SECRET_OPTION_WORDS",
    "SecretFilter",
    "install_log_filter",
    "is_secret_option",
    "mask_options",
    "mask_url",
    "redact",
    "redact_log",
    "register_secret",
]

_lock = threading.Lock()
_secrets: set[str] = set()

#: words that make a storage option or URL query parameter a credential
SECRET_OPTION_WORDS = (
    "secret",
    "password",
    "passwd",
    "pwd",
    "pass",
    "token",
    "key",
    "credential",
    "sas",
    "sig",
    "auth",
    "connection_string",
    "conn_str",
)

MASK = "***"

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]*")
_QUERY_PARAM = re.compile(r"(?P<sep>[?&;])(?P<name>[^=&;#?]*)=(?P<value>[^&;#]*)")

# credential shapes that libraries print on their own (logs only: a key may look like these)
_NAMES = (
    r"security-token|authorization|password|passwd|pwd|secret|session_token|access_key|account_key"
    r"|sas_token|client_secret|api_key|apikey|token|connection_string"
)
_LOG_PATTERNS = (
    re.compile(r"(?P<head>)\b(?:AKIA|ASIA|AIDA|AROA)[0-9A-Z]{16}\b"),
    re.compile(r"(?i)(?P<head>Credential=)[^/,\s'\"]+"),
    re.compile(r"(?i)(?P<head>Signature[=:]\s*)[0-9a-f]+"),
    re.compile(r"(?i)(?P<head>x-amz-security-token:)[^\s'\"]+"),
    re.compile(rf"(?i)(?P<head>(?:{_NAMES})['\"]?\s*[:=]\s*b?['\"])[^'\"]+"),
    re.compile(rf"(?i)(?P<head>(?:{_NAMES})=)[^\s&,;'\")]+"),
)

#: loggers whose records pass through :class:`SecretFilter`
LOGGERS = (
    "reclaim",
    "botocore",
    "boto3",
    "s3transfer",
    "aiobotocore",
    "s3fs",
    "fsspec",
    "urllib3",
    "gcsfs",
    "adlfs",
    "azure",
)


def register_secret(value: str) -> None:
    """Remember ``value`` so that :func:`redact` hides it from now on."""
    if len(value) >= 4:  # masking very short strings would garble unrelated text
        with _lock:
            _secrets.add(value)


def is_secret_option(name: str) -> bool:
    """Whether a storage option (or URL query parameter) with this name holds a credential."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_OPTION_WORDS)


def mask_url(text: str) -> str:
    """Return ``text`` with the password and credential query parameters of every URL in it masked."""
    return _URL.sub(lambda m: _mask_one_url(m.group(0)), text)


def url_secrets(url: str) -> list[str]:
    """The secret parts of one URL: its password and credential query values."""
    found: list[str] = []
    if "://" not in url:
        return found
    rest = url.split("://", 1)[1]
    at = rest.rfind("@")
    if at >= 0 and ":" in rest[:at]:
        found.append(rest[:at].split(":", 1)[1])
    for match in _QUERY_PARAM.finditer(rest):
        if is_secret_option(match.group("name")) and match.group("value"):
            found.append(match.group("value"))
    return found


def _mask_one_url(url: str) -> str:
    # punctuation that ends a sentence around the URL ("catalog URL: failed") is not part of it
    stripped = url.rstrip(":,.)")
    tail = url[len(stripped) :]
    scheme, rest = stripped.split("://", 1)
    # the userinfo ends at the last '@': a password may hold '@', '/' or '?' unescaped, and
    # masking too much of an odd URL is safe where masking too little is not
    at = rest.rfind("@")
    if at >= 0 and ":" in rest[:at]:
        user = rest[:at].split(":", 1)[0]
        rest = f"{user}:{MASK}{rest[at:]}"
    rest = _QUERY_PARAM.sub(_mask_param, rest)
    return f"{scheme}://{rest}{tail}"


def _mask_param(match: re.Match[str]) -> str:
    if is_secret_option(match.group("name")) and match.group("value"):
        return f"{match.group('sep')}{match.group('name')}={MASK}"
    return match.group(0)


def mask_options(value: Any) -> Any:
    """A copy of storage options with every credential value masked (nested mappings included)."""
    if isinstance(value, Mapping):
        return {
            k: MASK if is_secret_option(str(k)) and not isinstance(v, Mapping) else mask_options(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_options(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


def redact(text: str) -> str:
    """Mask URL credentials and every registered secret in ``text``; nothing else is altered."""
    text = mask_url(text)
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_log(text: str) -> str:
    """:func:`redact`, plus the credential shapes storage libraries print in their own logs."""
    text = redact(text)
    for pattern in _LOG_PATTERNS:
        text = pattern.sub(lambda m: m.group("head") + MASK, text)
    return text


class SecretFilter(logging.Filter):
    """Mask secrets in a log record's message, arguments and traceback; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format: keep it, masked as it stands
            message = f"{record.msg} {record.args}"
        record.msg = redact_log(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact_log("".join(traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact_log(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_log(record.stack_info)
        return True


_FILTER = SecretFilter()

# loggers the storage libraries create only when a client first sends a request: made now, so
# that they carry the filter from their first record
_LATE_LOGGERS = (
    "botocore.auth",
    "botocore.endpoint",
    "botocore.hooks",
    "botocore.parsers",
    "botocore.credentials",
    "botocore.httpsession",
    "botocore.retryhandler",
    "botocore.client",
    "botocore.awsrequest",
    "botocore.utils",
    "aiobotocore.endpoint",
    "aiobotocore.httpsession",
    "aiobotocore.credentials",
    "aiobotocore.client",
    "urllib3.connectionpool",
)
_factory_lock = threading.Lock()
_factory_installed = False


def _install_record_factory() -> None:
    """Filter records of any logger under :data:`LOGGERS` as they are made, children included."""
    global _factory_installed
    with _factory_lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if record.name.split(".", 1)[0] in LOGGERS:
                _FILTER.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


def install_log_filter() -> None:
    """Put :class:`SecretFilter` on reclaim's loggers and on the storage libraries' loggers.

    A logger's filters see only the records logged on that very logger, so the
    filter goes on every existing logger under :data:`LOGGERS` (libraries
    create theirs when imported; this is called again whenever a store is
    opened), on those they create late, and on the handlers of the root logger;
    a record factory applies it to records of any other logger under those
    names. Calling it again is cheap and adds nothing twice.
    """
    _install_record_factory()
    names = [name for name in list(logging.root.manager.loggerDict) if name.split(".", 1)[0] in LOGGERS]
    for name in {*LOGGERS, *_LATE_LOGGERS, *names}:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in logging.root.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


# every ReclaimError message passes through the redaction from now on (see reclaim.errors)
use_redactor(redact)
