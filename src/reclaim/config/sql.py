"""SQL fragments from the configuration that cannot escape the place they are put in.

A collection's or reference source's ``where`` is put inside ``WHERE ... AND
(<where>)`` of the statement that selects (and deletes) candidates, and a
``query`` inside ``FROM (<query>) q``. A fragment such as ``true) OR (true`` would
close that parenthesis and turn the candidate predicate into ``true``: rows
still referenced, or created a second ago, would be deleted. So every fragment
is checked, at configuration time, by a tokenizer that knows where SQL string
literals and quoted identifiers begin and end on PostgreSQL, MySQL/MariaDB and
SQLite, and refuses:

- a parenthesis that closes below the fragment's own level, or any left open;
- ``;`` (a second statement) outside literals (a ``query`` may end with one);
- comments (``--``, ``/*``, ``*/``, and ``#``, a comment on MySQL), which could
  hide the closing parenthesis reclaim adds;
- backslashes, whose meaning inside a literal differs between databases and
  server settings (MySQL's ``'\\''`` is a quote, PostgreSQL's is a backslash),
  so the end of a literal would be ambiguous;
- the lexical forms only one dialect reads as a literal or a parameter (``$$``
  dollar quoting, ``[brackets]``, ``?``, ``@x``, ``:x``), and control characters.

What remains reads the same on every supported database, so the tokenizer's
view of where each literal ends is the database's.
"""

from __future__ import annotations

import re

__all__ = ["check_query", "check_where"]

_WORD = re.compile(r"[A-Za-z0-9_$\u0080-\U0010ffff]")
_ALLOWED_SPACE = " \t\r\n"
_ALLOWED_PUNCT = set("(),.=<>!+-*/%|&~^:'\"`")
# '#' starts DataJoint's lookup table names (`#paramset`); inside backticks MySQL reads it as
# part of the name, and where backticks quote nothing (PostgreSQL) '#' is an operator, no comment
_BACKTICK_NAME = re.compile(r"^[A-Za-z0-9_$# ]+$")


class FragmentError(ValueError):
    """A SQL fragment that could escape its place; the message says why."""


def check_where(text: str) -> str:
    """Return ``text`` if it is one self-contained SQL condition; raise ``ValueError`` saying why not."""
    if not text.strip():
        raise FragmentError("is empty; leave it out to select every row")
    _scan(text)
    return text


def check_query(text: str) -> str:
    """Return the query without trailing ``;`` if it is one self-contained statement.

    Raises ``ValueError`` saying why otherwise.
    """
    cleaned = text.strip()
    while cleaned.endswith(";"):
        cleaned = cleaned[:-1].rstrip()
    if not cleaned:
        raise FragmentError("the query is empty")
    _scan(cleaned)
    return cleaned


def _scan(text: str) -> None:
    if "\\" in text:
        raise FragmentError("contains a backslash; databases disagree on what it means inside a literal")
    if "\x00" in text:
        raise FragmentError("contains a NUL character")
    depth = 0
    i = 0
    n = len(text)
    word_start_alpha: bool | None = None  # None outside a word; else whether it began with a non-digit
    while i < n:
        ch = text[i]
        if (ord(ch) < 32 and ch not in _ALLOWED_SPACE) or ch == "\x7f":
            raise FragmentError(f"contains the control character {ch!r}")
        if ch in "'\"`":
            end = _literal_end(text, i)
            if ch == "`" and not _BACKTICK_NAME.match(text[i + 1 : end - 1].replace("``", "")):
                raise FragmentError("a `quoted` name may hold only letters, digits, '_', '$', '#' and spaces")
            i = end
            word_start_alpha = None
            continue
        if _WORD.match(ch):
            if word_start_alpha is None:
                word_start_alpha = not ch.isdigit() and ch != "$"
            if ch == "$" and not word_start_alpha:
                raise FragmentError("'$' outside a name (dollar quoting or a parameter) is not accepted")
            i += 1
            continue
        word_start_alpha = None
        two = text[i : i + 2]
        if two in ("--", "/*", "*/") or ch == "#":
            raise FragmentError("contains a comment marker (--, /*, */ or #); comments are not accepted")
        if ch == ";":
            raise FragmentError("contains ';' outside a string; give one condition, not several statements")
        if ch == ":":
            run = len(text[i:]) - len(text[i:].lstrip(":"))
            if run != 2 or (i > 0 and text[i - 1] == ":"):
                raise FragmentError("':' is accepted only as the '::' cast (':name' is a bind parameter)")
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise FragmentError(
                    "closes a parenthesis it did not open; it must be one self-contained expression"
                )
        elif ch not in _ALLOWED_PUNCT and ch not in _ALLOWED_SPACE:
            raise FragmentError(f"contains {ch!r}, which is not accepted outside a string")
        i += 1
    if depth:
        raise FragmentError("leaves a parenthesis open; it must be one self-contained expression")


def _literal_end(text: str, start: int) -> int:
    """Index just past the literal (or quoted name) opened at ``start``; doubled quotes escape."""
    quote = text[start]
    i = start + 1
    while True:
        j = text.find(quote, i)
        if j < 0:
            raise FragmentError(f"a literal opened with {quote} is never closed")
        if text[j + 1 : j + 2] == quote:
            i = j + 2
            continue
        return j + 1
