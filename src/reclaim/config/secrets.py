"""Keeping secrets out of every message, report and log (invariant 9).

Two mechanisms work together: URLs are masked structurally (the password part
of ``scheme://user:password@host`` becomes ``***``), and every value that came
into the configuration through ``${ENV_VAR}`` interpolation or a secret-looking
storage option is registered here and replaced wherever it appears in text.
"""

from __future__ import annotations

import re
import threading

__all__ = ["SECRET_OPTION_WORDS", "mask_url", "redact", "register_secret"]

_lock = threading.Lock()
_secrets: set[str] = set()

#: storage option names whose values are credentials
SECRET_OPTION_WORDS = ("secret", "password", "token", "key", "credential", "sas", "signature")

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?=@)")


def register_secret(value: str) -> None:
    """Remember ``value`` so that :func:`redact` hides it from now on."""
    if len(value) >= 4:  # masking very short strings would garble unrelated text
        with _lock:
            _secrets.add(value)


def mask_url(url: str) -> str:
    """Return ``url`` with the password replaced by ``***``."""
    return _URL_PASSWORD.sub(lambda m: m.group("head") + "***", url)


def redact(text: str) -> str:
    """Mask URL passwords and every registered secret in ``text``."""
    text = mask_url(text)
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def is_secret_option(name: str) -> bool:
    """Whether a storage option with this name holds a credential."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_OPTION_WORDS)
