"""One adapter from any fsspec filesystem to the :class:`~reclaim.stores.base.Store` protocol.

:class:`FsspecStore` serves every scheme fsspec knows that has no
specialisation of its own (``gs``, ``az``, ``abfs``, ...) and is the base of the
specialisations (``local``, ``memory``, ``s3``), which share its key handling
and error wrapping.

Safety notes that hold for every backend built on it:

- Keys are validated before anything is touched and joined below the store
  root, so no key can name anything outside the store (invariant 8).
- Paths are never handed to fsspec calls that expand glob patterns
  (``rm``, ``copy``, ``cat``) when they contain ``*``, ``?`` or ``[``: deleting
  the key ``x*`` must never delete ``xa`` and ``xb``.
- Backend errors other than "missing" (``FileNotFoundError``) and "destination
  exists" (``FileExistsError``) become :class:`~reclaim.errors.StoreError`
  naming the store and key; the message is redacted so that credentials never
  show (invariant 9), and the backend exception is not chained for the same
  reason.
- The listing walks the tree one directory at a time in key byte order (see
  :mod:`reclaim.stores._walk`); a directory that vanishes or fails mid-walk is
  an error, never a silently short listing.
"""

from __future__ import annotations

import errno
import logging
import posixpath
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from reclaim.config.secrets import is_secret_option, mask_url
from reclaim.errors import StoreError
from reclaim.stores._walk import DirEntry, check_listing_args, walk_ordered
from reclaim.stores.base import ObjectInfo, stat_each, validate_key

__all__ = ["FsspecStore", "exists_error", "missing_error", "secret_values", "store_error"]

log = logging.getLogger(__name__)

#: keys per batched delete request (the S3 DeleteObjects limit; fine for the others)
DELETE_BATCH = 1000

_GLOB_CHARS = frozenset("*?[")
#: fsspec protocols whose calls stay on this machine: nothing to gain from running many at once
_LOCAL_PROTOCOLS = frozenset({"file", "local", "memory"})
_MTIME_FIELDS = ("mtime", "LastModified", "last_modified", "updated", "modified", "created")
_Entries = list[DirEntry]


class FsspecStore:
    """A store over an fsspec filesystem ``fs``; keys are relative to ``root``.

    ``root`` is a path in the filesystem's own notation (no protocol), such as
    ``bucket/prefix`` or ``/name`` for ``memory://``. ``secrets`` are credential
    values that must be masked in this store's error messages in addition to
    the globally registered ones.
    """

    atomic_move: bool = False

    def __init__(self, name: str, url: str, fs: Any, root: str, *, secrets: Iterable[str] = ()) -> None:
        self.name = name
        self.url = mask_url(url)
        self.fs = fs
        self.root = root.rstrip("/")
        self._secrets = tuple(secrets)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.url!r})"

    # -- errors -----------------------------------------------------------

    def _fail(self, action: str, exc: BaseException | None = None, *, key: str | None = None) -> StoreError:
        """A ``StoreError`` about ``action`` (and the backend's ``exc``) with secrets masked."""
        return store_error(self.name, action, exc, key=key, secrets=self._secrets)

    def _missing(self, key: str) -> FileNotFoundError:
        return missing_error(self.name, key)

    def _exists_error(self, key: str) -> FileExistsError:
        return exists_error(self.name, key)

    def _path(self, key: str) -> str:
        """The backend path of ``key``; raises ``ValueError`` for an invalid key."""
        validate_key(key)
        return f"{self.root}/{key}"

    # -- listing ----------------------------------------------------------

    def list(
        self,
        prefix: str = "",
        *,
        skip: Sequence[str] = (),
        start_after: str | None = None,
        end_before: str | None = None,
    ) -> Iterator[ObjectInfo]:
        """Yield the objects under ``prefix`` in key byte order (see the Store protocol).

        ``start_after``/``end_before`` restrict the listing to keys strictly
        between them, so independent key ranges can be listed in parallel.
        Raises ``ValueError`` for an invalid prefix (at once) and ``StoreError``
        (while iterating) when any directory cannot be listed: the listing is
        complete or an error, so a failure can never make live objects look
        unreferenced by their absence from the listing.
        """
        check_listing_args(prefix, skip, start_after, end_before)
        return walk_ordered(self._list_dir, prefix, skip, start_after, end_before)

    def _list_dir(self, rel_dir: str, is_start: bool) -> _Entries:
        """The entries of one directory, from ``fs.ls`` (which object stores serve with a delimiter)."""
        path = f"{self.root}/{rel_dir}" if rel_dir else self.root
        try:
            infos = self.fs.ls(path, detail=True)
        except FileNotFoundError:
            if is_start:
                return []  # nothing stored under the prefix (object stores have no empty directories)
            raise self._fail(f"directory {rel_dir!r} vanished during the listing") from None
        except Exception as exc:
            raise self._fail(f"listing {rel_dir or 'the root'!r} failed", exc) from None
        base = path.rstrip("/") + "/"
        entries: _Entries = []
        for info in infos:
            is_dir = info.get("type") == "directory"
            name = str(info.get("name", ""))
            if is_dir:
                name = name.rstrip("/")
            if name in (path, path.rstrip("/"), base):
                continue  # some backends list a directory marker or the file itself
            if not name.startswith(base) or "/" in name[len(base) :]:
                raise self._fail(f"listing {rel_dir or 'the root'!r} returned an unexpected entry {name!r}")
            child = name[len(base) :]
            if child in (".", ".."):
                log.warning("store %r: ignoring an object that no valid key can name: %r", self.name, name)
                continue
            size = None if is_dir else _int_or_none(info.get("size"))
            entries.append((child, is_dir, size, _mtime_of(info), _etag_of(info)))
        return entries

    # -- single objects ---------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        """Size, mtime and ETag (where the backend has one) of ``key``.

        Raises ``FileNotFoundError`` when there is no object (a directory is not
        an object), ``ValueError`` for an invalid key, ``StoreError`` otherwise.
        """
        path = self._path(key)
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            raise self._missing(key) from None
        except Exception as exc:
            raise self._fail("stat failed", exc, key=key) from None
        if info.get("type") == "directory":
            raise self._missing(key)
        return ObjectInfo(key, _int_or_none(info.get("size")), _mtime_of(info), _etag_of(info))

    def stat_many(self, keys: Sequence[str]) -> dict[str, ObjectInfo]:
        """:meth:`stat` of each of ``keys`` that exists, by key (missing keys are left out).

        One ``stat`` per key (:func:`~reclaim.stores.base.stat_each`); errors as
        for :meth:`stat`, every key validated first.
        """
        return stat_each(self, keys)

    @property
    def parallel_io(self) -> bool:
        """Whether single-object calls are round trips to a remote backend, worth running many at once.

        False for the local and memory filesystems, where a call takes
        microseconds and threads would only contend.
        """
        protocol = self.fs.protocol
        names = {protocol} if isinstance(protocol, str) else set(protocol)
        return not names & _LOCAL_PROTOCOLS

    def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``; errors as for :meth:`stat`."""
        try:
            self.stat(key)
        except FileNotFoundError:
            return False
        return True

    def read(self, key: str) -> bytes:
        """The content of ``key``; ``FileNotFoundError`` if missing, ``StoreError`` on failure."""
        path = self._path(key)
        try:
            return bytes(self.fs.cat_file(path))
        except (FileNotFoundError, IsADirectoryError):
            raise self._missing(key) from None
        except Exception as exc:
            raise self._fail("read failed", exc, key=key) from None

    def write(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key`` (replacing any object there), creating parent directories.

        Raises ``StoreError`` on failure.
        """
        path = self._path(key)
        try:
            # as fsspec's own put does; a no-op on object stores, needed where directories are real
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            self.fs.pipe_file(path, data)
        except Exception as exc:
            raise self._fail("write failed", exc, key=key) from None

    def move(self, src: str, dst: str) -> None:
        """Copy ``src`` to ``dst``, then delete ``src``.

        Raises ``FileNotFoundError`` if ``src`` is missing and ``FileExistsError``
        if ``dst`` exists. Safe against crashes: the copy is complete before the
        source is deleted, so an interruption leaves two copies, never none.
        """
        src_path, dst_path = self._path(src), self._path(dst)
        self.stat(src)
        if self.exists(dst):
            raise self._exists_error(dst)
        try:
            self.fs.makedirs(posixpath.dirname(dst_path), exist_ok=True)
            self.fs.cp_file(src_path, dst_path)
        except FileNotFoundError:
            raise self._missing(src) from None
        except Exception as exc:
            raise self._fail(f"copying to {dst!r} failed", exc, key=src) from None
        try:
            self.fs.rm_file(src_path)
        except FileNotFoundError:
            pass  # ignoring this is safe: the source is gone already and the copy holds the bytes
        except Exception as exc:
            raise self._fail(
                f"copied to {dst!r} but deleting the source failed (both kept)", exc, key=src
            ) from None

    def delete(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` in batches of up to 1000 (``fs.rm(list)``); missing keys are ignored.

        Every key is validated before anything is deleted. Keys with glob
        characters are deleted one by one with ``rm_file``, because ``fs.rm``
        would expand them as patterns. Raises ``StoreError`` on failure; keys of
        later batches are then left in place, which only keeps them longer.
        """
        pairs = [(key, self._path(key)) for key in dict.fromkeys(keys)]
        literal = [(k, p) for k, p in pairs if not _GLOB_CHARS.intersection(p)]
        for start in range(0, len(literal), DELETE_BATCH):
            batch = literal[start : start + DELETE_BATCH]
            try:
                self.fs.rm([p for _, p in batch])
            except FileNotFoundError:
                self._delete_each(batch)  # some backends refuse a batch naming a missing path
            except Exception as exc:
                raise self._fail(
                    f"deleting a batch of {len(batch)} keys failed", exc, key=batch[0][0]
                ) from None
        self._delete_each([(k, p) for k, p in pairs if _GLOB_CHARS.intersection(p)])

    def _delete_each(self, pairs: Sequence[tuple[str, str]]) -> None:
        for key, path in pairs:
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                pass  # deletes are idempotent: a missing key is already deleted
            except Exception as exc:
                raise self._fail("delete failed", exc, key=key) from None

    def close(self) -> None:
        """Release what the store holds; idempotent.

        Nothing to do here: the local and memory filesystems hold no
        connection, and the generic adapter leaves a filesystem's sessions to
        the filesystem, which closes them when it is collected (fsspec has no
        common ``close``). Backends with a client of their own (S3) override it.
        """


def store_error(
    store: str,
    action: str,
    exc: BaseException | None = None,
    *,
    key: str | None = None,
    secrets: Iterable[str] = (),
) -> StoreError:
    """A ``StoreError`` for ``store`` saying ``action`` failed (with ``exc``), credentials masked.

    Masks URL passwords, every registered secret and the given ``secrets`` (the
    store's own credentials), so the message is safe to log and show.
    """
    text = action if exc is None else f"{action}: {type(exc).__name__}: {exc}"
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return StoreError(store, text, key=key)


def missing_error(store: str, key: str) -> FileNotFoundError:
    """The ``FileNotFoundError`` of the error contract: ``store`` has no object at ``key``."""
    return FileNotFoundError(errno.ENOENT, f"store {store!r} has no object at this key", key)


def exists_error(store: str, key: str) -> FileExistsError:
    """The ``FileExistsError`` of the error contract: ``store`` already has an object at ``key``."""
    return FileExistsError(errno.EEXIST, f"store {store!r} already has an object at this key", key)


def secret_values(options: Mapping[str, Any]) -> list[str]:
    """The credential values in storage ``options`` (nested mappings included), for masking."""
    found: list[str] = []
    for name, value in options.items():
        if isinstance(value, Mapping):
            found.extend(secret_values(value))
        elif isinstance(value, str) and is_secret_option(str(name)):
            found.append(value)
    return found


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _etag_of(info: Mapping[str, Any]) -> str | None:
    value = info.get("ETag", info.get("etag"))
    return value.strip('"') if isinstance(value, str) and value else None


def _mtime_of(info: Mapping[str, Any]) -> float | None:
    """Modification time in epoch seconds from whichever field the backend fills, else ``None``."""
    for field in _MTIME_FIELDS:
        value = info.get(field)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                continue
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return None
