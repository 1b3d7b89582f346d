"""Listing a directory tree in exact key byte order, one directory at a time.

A store listing must come out in byte order of the keys (the scan merges it with
the reference streams, DESIGN.md "a streaming merge"). A directory tree gives
that order if each directory's entries are sorted by ``name`` for files and
``name + "/"`` for directories: then ``a-b`` < ``a.txt`` < ``a/x`` < ``a0``,
exactly the order of the full keys, because every key under directory ``a``
starts with ``a/``.

The walk is lazy: a stack of iterators, one sorted list per open directory, so
memory is proportional to the largest single directory (times the depth), not
to the number of keys. Directories are pruned when nothing under them can be
listed (outside ``prefix``, under a ``skip`` prefix, or outside the
``start_after``/``end_before`` range).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from reclaim.stores.base import ObjectInfo, validate_key

__all__ = ["DirEntry", "ListDir", "check_listing_args", "walk_ordered"]

DirEntry = tuple[str, bool, int | None, float | None, str | None]
"""``(name, is_dir, size, mtime, etag)`` of one directory entry; unknown fields are ``None``."""

ListDir = Callable[[str, bool], list[DirEntry]]
"""``list_dir(rel_dir, is_start)``: the entries of directory ``rel_dir`` ("" is the root).

``is_start`` is true for the directory the walk starts in (derived from the
prefix): a missing start directory simply has no objects, while a directory that
vanishes after its parent listed it must raise (the listing would be short).
The entries are returned as a list, read completely, so that every error is
raised (and wrapped) by ``list_dir`` itself.
"""


def check_listing_args(
    prefix: str, skip: Sequence[str], start_after: str | None, end_before: str | None
) -> None:
    """Raise ``ValueError`` for a prefix or skip prefix that could name something outside the root.

    A prefix is a key with an optional partial last segment: ``a/b`` lists
    ``a/b``, ``a/bc`` and ``a/b/x``. Its directory part must be a valid key.
    An empty skip prefix would silently hide the whole store, so it is refused.
    """
    for value, what in [(prefix, "prefix"), *((s, "skip prefix") for s in skip)]:
        if value.startswith("/") or "\x00" in value:
            raise ValueError(f"invalid {what} {value!r}: prefixes are relative")
        head = value.rpartition("/")[0]
        if head:
            validate_key(head)
    if any(not s for s in skip):
        raise ValueError("an empty skip prefix would hide every key")
    for bound in (start_after, end_before):
        if bound is not None and (bound.startswith("/") or "\x00" in bound):
            raise ValueError(f"invalid range bound {bound!r}")


def walk_ordered(
    list_dir: ListDir,
    prefix: str = "",
    skip: Sequence[str] = (),
    start_after: str | None = None,
    end_before: str | None = None,
) -> Iterator[ObjectInfo]:
    """Yield the objects under ``prefix`` in key byte order, directory by directory.

    Only keys ``k`` with ``start_after < k < end_before`` (where given) are
    yielded. Errors from ``list_dir`` propagate unchanged; the caller's
    ``list_dir`` turns them into ``StoreError`` so that a listing is complete or
    an error.
    """
    skips = tuple(skip)  # str.startswith takes a tuple: one call for every skip prefix
    start = prefix.rpartition("/")[0]
    base = start + "/" if start else ""
    # one frame per open directory: its sorted entries (an iterator that keeps its
    # place while the walk descends) and the key prefix of its children
    stack = [(iter(_sorted(list_dir(start, True))), base)]
    while stack:
        entries, base = stack[-1]
        for name, is_dir, size, mtime, etag in entries:
            key = base + name
            if is_dir:
                dir_key = key + "/"
                if not (dir_key.startswith(prefix) or prefix.startswith(dir_key)):
                    continue
                if dir_key.startswith(skips):
                    continue  # pruned: nothing under a skipped prefix is ever listed
                if end_before is not None and dir_key >= end_before:
                    return  # every later key is >= dir_key >= end_before
                if start_after is not None and start_after > dir_key and not start_after.startswith(dir_key):
                    continue  # every key under dir_key sorts before start_after
                stack.append((iter(_sorted(list_dir(key, False))), dir_key))
                break  # descend; this directory's iterator resumes after it
            if not key.startswith(prefix) or key.startswith(skips):
                continue
            if start_after is not None and key <= start_after:
                continue
            if end_before is not None and key >= end_before:
                return
            yield ObjectInfo(key, size, mtime, etag)
        else:
            stack.pop()


def _sort_key(entry: DirEntry) -> str:
    return entry[0] + "/" if entry[1] else entry[0]


def _sorted(entries: list[DirEntry]) -> list[DirEntry]:
    """One directory's entries sorted so that the walk yields byte order (see the module docstring)."""
    if not any(entry[1] for entry in entries):
        entries.sort()  # no directories: the names alone decide (names in a directory are unique)
        return entries
    return sorted(entries, key=_sort_key)
