"""A store in a local directory (``file:///srv/blobs`` or a plain path).

The specialisation exists for three reasons:

- **A listing without path lookups.** The tree is walked with ``os.scandir``
  on a descriptor of each directory, its entries sorted by name (``name + "/"``
  for directories) so that the keys come out in byte order; whether an entry
  is a directory comes from the directory entry's type (``d_type``), and a
  file's size and mtime from ``fstatat`` relative to the open directory (no
  path resolved, no symlink followed). Memory is proportional to the largest
  single directory.
- **Pages that stat only what the scan asks for.** :meth:`LocalStore.list_pages`
  yields each directory's runs of files as pages of keys
  (:class:`~reclaim.stores._pages.KeyPage`) while the directory is open, each
  child opened relative to its parent's descriptor with ``O_NOFOLLOW``; a
  page's ``info`` is one ``fstatat`` on that descriptor, asked only for the
  keys the scan finds unreferenced (the referenced two thirds of an archive
  are never stat'ed). A page is invalid once the walk moves on: its
  directory is closed, and ``info`` refuses rather than read a reused descriptor.
- **Nothing outside the root.** Symbolic links are never followed: the listing
  yields a symlink as a key and never descends into it, ``read`` refuses to
  follow a symlink, and any key whose parent directory resolves outside the
  root (through a symlinked directory) is refused with ``StoreError``: every
  directory segment of a key is ``lstat``ed, and a symlink there is refused.
- **Atomic moves and writes.** ``move`` is a rename that refuses to replace
  an existing destination (``renameat2(RENAME_NOREPLACE)``, or a hard link plus
  unlink where that is not supported), so quarantine and restore never copy
  bytes and never overwrite an object a writer has just stored. ``write`` goes
  through a temporary file in the same directory and a rename, so a reader sees
  the old object or the new one, never half of one. (A concurrent listing may
  see the temporary file as a young object; a crash leaves it as garbage.)
"""

from __future__ import annotations

import ctypes
import errno
import logging
import operator
import os
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from itertools import compress
from secrets import token_hex
from stat import S_ISDIR, S_ISLNK
from types import TracebackType
from typing import cast

from fsspec.implementations.local import LocalFileSystem

from reclaim.stores._pages import PAGE_SIZE, KeyPage
from reclaim.stores._walk import DirEntry, check_listing_args
from reclaim.stores.base import ObjectInfo, validate_key
from reclaim.stores.fsspec_store import FsspecStore, store_error

__all__ = ["LocalStore"]

log = logging.getLogger(__name__)

_Entries = list[DirEntry]
_TMP_PREFIX = ".reclaim-tmp-"
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
#: directory descriptors a batch keeps open at most (least recently used closed first)
_OPEN_DIRS = 256
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
#: a directory under the root: never through a symbolic link
_CHILD_DIR_FLAGS = _DIR_FLAGS | os.O_NOFOLLOW
_PAGE_DIRS = 64
"""Directories one page may span (each stays open until the page is read)."""
_NAME = operator.attrgetter("name")
_IS_DIR = operator.methodcaller("is_dir", follow_symlinks=False)


class LocalStore(FsspecStore):
    """A store rooted at the local directory ``root`` (made absolute; the root itself is trusted)."""

    atomic_move = True

    def __init__(self, name: str, url: str, root: str) -> None:
        absolute = os.path.abspath(root)
        super().__init__(name, url, LocalFileSystem(), absolute)
        if not self.root:
            raise self._fail("refusing to use the filesystem root '/' as a store")

    def _path(self, key: str) -> str:
        """The file path of ``key``; ``ValueError`` if invalid, ``StoreError`` if it passes a symlink.

        Every directory segment of the key under the root is ``lstat``ed: a
        symbolic link there (which could lead outside the root) is refused, so
        is a segment that cannot be checked. A missing segment ends the check:
        nothing under it exists. The root itself is trusted (resolved once).
        """
        validate_key(key)
        path = self.root
        for part in key.split("/")[:-1]:
            path = f"{path}/{part}"
            try:
                mode = os.lstat(path).st_mode
            except (FileNotFoundError, NotADirectoryError):
                break
            except OSError as exc:
                raise self._fail(f"checking the directory of {key!r} failed", exc, key=key) from None
            if S_ISLNK(mode):
                raise self._fail("the key leads outside the store root through a symbolic link", key=key)
            if not S_ISDIR(mode):
                break  # a file in the way: whatever is done with the key fails with NotADirectoryError
        return f"{self.root}/{key}"

    # -- listing ----------------------------------------------------------

    def _list_dir(self, rel_dir: str, is_start: bool) -> _Entries:
        """One directory's entries: the type from ``d_type``, size and mtime from ``fstatat``.

        The directory is opened with ``O_NOFOLLOW`` and each file's ``lstat`` is
        taken relative to that descriptor, so no path is resolved again: a
        directory swapped for a symlink after its parent was listed is refused,
        and a file removed between ``readdir`` and its ``stat`` is left out
        (it is gone, like a file deleted before the listing).
        """
        if is_start and rel_dir and not self._is_plain_directory(rel_dir):
            return []  # nothing stored under the prefix
        path = f"{self.root}/{rel_dir}" if rel_dir else self.root
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | (os.O_NOFOLLOW if rel_dir else 0)
        try:
            fd = os.open(path, flags)
            try:
                with os.scandir(fd) as scan:
                    return self._entries(scan, rel_dir)
            finally:
                os.close(fd)
        except OSError as exc:
            # fail closed: a directory that vanished or cannot be read would make the listing short
            what = f"directory {rel_dir!r}" if rel_dir else f"the store root {self.root!r}"
            raise self._fail(f"listing {what} failed", exc) from None

    def _entries(self, scan: Iterator[os.DirEntry[str]], rel_dir: str) -> _Entries:
        entries: _Entries = []
        for entry in scan:
            name = entry.name
            if not (name.isascii() or _is_utf8(name)):
                # ignoring this is safe: an object no key can name is never a candidate
                log.warning("store %r: skipping %r in %r, its name is not UTF-8", self.name, name, rel_dir)
                continue
            if entry.is_dir(follow_symlinks=False):
                entries.append((name, True, None, None, None))
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed since readdir: gone, like a file deleted before the listing
            entries.append((name, False, st.st_size, st.st_mtime, None))
        return entries

    def list_pages(self, prefix: str = "", *, skip: Sequence[str] = ()) -> Iterator[KeyPage]:
        """The keys of :meth:`list` (same order, same pruning) as pages, stat'ing nothing.

        Each page is a run of files of one directory (at most ``PAGE_SIZE``),
        valid until the next page is asked for. Raises ``ValueError`` for an
        invalid prefix (at once) and ``StoreError`` (while iterating) when a
        directory cannot be opened or read: the listing is complete or an error.
        """
        check_listing_args(prefix, skip, None, None)
        return self._pages(prefix, tuple(skip))

    def _pages(self, prefix: str, skips: tuple[str, ...]) -> Iterator[KeyPage]:
        start = prefix.rpartition("/")[0]
        if start and not self._is_plain_directory(start):
            return  # nothing stored under the prefix
        path = f"{self.root}/{start}" if start else self.root
        root = self._open(path, None, start, (os.O_NOFOLLOW if start else 0))
        stack = [root]
        page = _Filling()
        try:
            self._read(root, start + "/" if start else "", prefix, skips)
            while stack:
                frame = stack[-1]
                plan, base, local_skips = frame.plan, frame.base, frame.skips
                while frame.position < len(plan):
                    item = plan[frame.position]
                    frame.position += 1
                    if isinstance(item, list):
                        for keys in frame.runs(item, prefix):
                            if page.keys and not page.fits(keys):
                                yield page.done()
                                page.read()
                            page.add(keys, frame)
                        continue
                    dir_key = f"{base}{item}/"
                    if frame.partial and not dir_key.startswith(prefix) and not prefix.startswith(dir_key):
                        continue
                    if local_skips and dir_key.startswith(local_skips):
                        continue  # pruned: nothing under a skipped prefix is ever listed
                    child = self._open(item, frame.fd, dir_key[:-1], os.O_NOFOLLOW)
                    stack.append(child)
                    self._read(child, dir_key, prefix, skips)
                    break  # descend; this directory resumes at its position afterwards
                else:
                    page.release(stack.pop())
            if page.keys:
                yield page.done()
                page.read()
        finally:
            for frame in stack:
                frame.close()
            page.close()

    def _open(self, path: str, dir_fd: int | None, rel_dir: str, extra: int) -> _OpenDir:
        try:
            return _OpenDir(self.name, os.open(path, _DIR_FLAGS | extra, dir_fd=dir_fd))
        except OSError as exc:
            # fail closed: a directory that vanished or cannot be read would make the listing short
            what = f"directory {rel_dir!r}" if rel_dir else f"the store root {self.root!r}"
            raise self._fail(f"listing {what} failed", exc) from None

    def _read(self, frame: _OpenDir, base: str, prefix: str, skips: tuple[str, ...]) -> None:
        """Read one open directory's entries into ``frame``, ordered as the keys under it sort."""
        try:
            with os.scandir(frame.fd) as scan:
                entries = list(scan)
            # map in C, not a loop: the type comes from d_type (an lstat only where it is unknown)
            names = list(map(_NAME, entries))
            kinds = list(map(_IS_DIR, entries))
        except OSError as exc:
            what = f"directory {base.rstrip('/')!r}" if base else f"the store root {self.root!r}"
            raise self._fail(f"listing {what} failed", exc) from None
        if True in kinds:
            files = list(compress(names, map(operator.not_, kinds)))
            dirs = list(compress(names, kinds))
        else:
            files, dirs = names, []
        if not "".join(names).isascii():
            files = self._utf8_only(files, base)
            dirs = self._utf8_only(dirs, base)
        frame.base = base
        frame.plan = _plan(files, dirs)
        # filters are needed only where the prefix ends inside this directory or a skip prefix does
        frame.partial = len(prefix) > len(base)
        frame.skips = tuple(s for s in skips if s.startswith(base))

    def _utf8_only(self, names: list[str], base: str) -> list[str]:
        kept = []
        for name in names:
            if _is_utf8(name):
                kept.append(name)
            else:
                # ignoring this is safe: an object no key can name is never a candidate
                log.warning("store %r: skipping %r in %r, its name is not UTF-8", self.name, name, base)
        return kept

    def _is_plain_directory(self, rel_dir: str) -> bool:
        """Whether every segment of ``rel_dir`` is a real directory (not a symlink): lstat per segment."""
        path = self.root
        for part in rel_dir.split("/"):
            path = os.path.join(path, part)
            try:
                mode = os.lstat(path).st_mode
            except (FileNotFoundError, NotADirectoryError):
                if not os.path.isdir(self.root):  # a missing root is an error, not an empty store
                    raise self._fail(f"the store root {self.root!r} is not a directory") from None
                return False
            except OSError as exc:
                raise self._fail(f"checking directory {rel_dir!r} failed", exc) from None
            if not S_ISDIR(mode):
                return False
        return True

    # -- single objects ---------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        """Size and mtime of ``key`` from ``os.lstat`` (a symlink is its own object, never followed).

        Raises ``FileNotFoundError`` when missing or a directory, ``StoreError`` otherwise.
        """
        path = self._path(key)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise self._missing(key) from None
        except OSError as exc:
            raise self._fail("stat failed", exc, key=key) from None
        if S_ISDIR(st.st_mode):
            raise self._missing(key)
        return ObjectInfo(key, st.st_size, st.st_mtime)

    def read(self, key: str) -> bytes:
        """The content of ``key``; a symlink is refused (``StoreError``): nothing outside the root is read."""
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise self._missing(key) from None
        except OSError as exc:
            raise self._fail("read failed (symbolic links are not followed)", exc, key=key) from None
        try:
            is_dir = S_ISDIR(os.fstat(fd).st_mode)
        except OSError as exc:
            os.close(fd)
            raise self._fail("read failed", exc, key=key) from None
        if is_dir:
            os.close(fd)
            raise self._missing(key)  # a directory is not an object
        try:
            with os.fdopen(fd, "rb") as file:
                return file.read()
        except OSError as exc:
            raise self._fail("read failed", exc, key=key) from None

    def write(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key`` atomically: temp file in the same directory, fsync, rename.

        Parent directories are created. Raises ``StoreError`` on failure; the
        temporary file is removed, and the previous object (if any) is intact.
        """
        path = self._path(key)
        parent = os.path.dirname(path)
        tmp = os.path.join(parent, f"{_TMP_PREFIX}{token_hex(8)}")
        try:
            os.makedirs(parent, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(tmp, path)
            except BaseException:
                with suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise self._fail("write failed", exc, key=key) from None

    def stat_many(self, keys: Sequence[str]) -> dict[str, ObjectInfo]:
        """:meth:`stat` of each of ``keys`` that exists, by key; one ``fstatat`` per key.

        Every key is validated first (``ValueError``); each directory is opened
        once for the whole batch (see the module docstring). A symlinked
        directory segment raises ``StoreError``, like :meth:`stat`.
        """
        wanted = list(dict.fromkeys(_valid(key) for key in keys))
        found: dict[str, ObjectInfo] = {}
        with _Dirs(self) as dirs:
            for key in wanted:
                parent, _, name = key.rpartition("/")
                fd = dirs.fd(parent, key=key)
                if fd is None:
                    continue
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                except OSError as exc:
                    raise self._fail("stat failed", exc, key=key) from None
                if not S_ISDIR(st.st_mode):
                    found[key] = ObjectInfo(key, st.st_size, st.st_mtime)
        return found

    def move(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst`` atomically, creating the parents of ``dst``.

        Raises ``FileNotFoundError`` if ``src`` is missing (or a directory),
        ``FileExistsError`` if ``dst`` exists: the rename itself refuses to
        replace, so a writer that stores ``dst`` concurrently is never overwritten.
        """
        with self.moves() as mover:
            mover.move(src, dst)

    @contextmanager
    def moves(self) -> Iterator[Mover]:
        """A :class:`Mover` for a batch of moves: each directory opened (or created) once for the batch."""
        with _Dirs(self) as dirs:
            yield Mover(self, dirs)

    def delete(self, keys: Sequence[str]) -> None:
        """Unlink each key (validated first); missing keys are ignored, directories are refused.

        Raises ``StoreError`` at the first failure; later keys stay, which only
        keeps them longer. Empty parent directories are left in place, so a
        writer creating a file in them concurrently is never disturbed.
        """
        with self.deletes() as deleter:
            deleter.delete(keys)

    @contextmanager
    def deletes(self) -> Iterator[Deleter]:
        """A :class:`Deleter` for a batch of deletes: each directory opened once for the batch."""
        with _Dirs(self) as dirs:
            yield Deleter(self, dirs)


class Deleter:
    """Deletes within one :class:`LocalStore` for one batch (from :meth:`LocalStore.deletes`)."""

    def __init__(self, store: LocalStore, dirs: _Dirs) -> None:
        self._store = store
        self._dirs = dirs

    def delete(self, keys: Sequence[str]) -> None:
        """What :meth:`LocalStore.delete` does, relative to the batch's directory descriptors."""
        wanted = [_valid(key) for key in dict.fromkeys(keys)]
        dirs = self._dirs
        # every directory checked before the first unlink: a refused call deletes nothing
        for key in wanted:
            dirs.fd(key.rpartition("/")[0], key=key)
        for key in wanted:
            parent, _, name = key.rpartition("/")
            fd = dirs.fd(parent, key=key)
            if fd is None:
                continue  # nothing under a missing directory: already deleted
            try:
                os.unlink(name, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError):
                pass  # deletes are idempotent: a missing key is already deleted
            except OSError as exc:
                raise self._store._fail("delete failed", exc, key=key) from None


class Mover:
    """Moves within one :class:`LocalStore` for one batch (from :meth:`LocalStore.moves`)."""

    def __init__(self, store: LocalStore, dirs: _Dirs) -> None:
        self._store = store
        self._dirs = dirs

    def move(self, src: str, dst: str) -> None:
        """What :meth:`LocalStore.move` does, relative to the batch's directory descriptors."""
        store = self._store
        _valid(src)
        _valid(dst)
        src_dir, _, src_name = src.rpartition("/")
        src_fd = self._dirs.fd(src_dir, key=src)
        if src_fd is None:
            raise store._missing(src)
        try:
            if S_ISDIR(os.stat(src_name, dir_fd=src_fd, follow_symlinks=False).st_mode):
                raise store._missing(src)  # a directory is not an object
        except (FileNotFoundError, NotADirectoryError):
            raise store._missing(src) from None
        except OSError as exc:
            raise store._fail("stat failed", exc, key=src) from None
        dst_dir, _, dst_name = dst.rpartition("/")
        try:
            dst_fd = self._dirs.fd(dst_dir, key=src, create=True)
        except OSError as exc:
            raise store._fail(f"creating the parent directories of {dst!r} failed", exc, key=src) from None
        assert dst_fd is not None  # created
        try:
            _rename_noreplace_at(src_fd, src_name, dst_fd, dst_name)
        except FileExistsError:
            raise store._exists_error(dst) from None
        except FileNotFoundError:
            raise store._missing(src) from None
        except OSError as exc:
            raise store._fail(f"moving to {dst!r} failed", exc, key=src) from None


class _Dirs:
    """The directories of one batch, each opened once from the root, never through a symlink."""

    def __init__(self, store: LocalStore) -> None:
        self._store = store
        self._open: OrderedDict[str, int] = OrderedDict()
        try:
            self._root = os.open(store.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise store._fail(f"opening the store root {store.root!r} failed", exc) from None

    def fd(self, rel_dir: str, *, key: str, create: bool = False) -> int | None:
        """A descriptor of directory ``rel_dir`` (``""``: the root); ``None`` when it does not exist.

        A file in the way counts as missing (whatever is done under it fails
        as missing). A symbolic link anywhere on the way raises ``StoreError``
        naming ``key``. With ``create``, missing directories are made (then
        ``OSError`` when that fails).
        """
        if not rel_dir:
            return self._root
        fd = self._open.get(rel_dir)
        if fd is not None:
            self._open.move_to_end(rel_dir)
            return fd
        parent, _, name = rel_dir.rpartition("/")
        parent_fd = self.fd(parent, key=key, create=create)
        if parent_fd is None:
            return None
        fd = self._open_child(parent_fd, name, key=key, create=create)
        if fd is None:
            return None
        self._open[rel_dir] = fd
        if len(self._open) > _OPEN_DIRS:
            _, oldest = self._open.popitem(last=False)
            os.close(oldest)
        return fd

    def _open_child(self, parent_fd: int, name: str, *, key: str, create: bool) -> int | None:
        store = self._store
        for _ in range(2):
            try:
                return os.open(name, _CHILD_DIR_FLAGS, dir_fd=parent_fd)
            except FileNotFoundError:
                if not create:
                    return None
                with suppress(FileExistsError):  # made concurrently: as good
                    os.mkdir(name, dir_fd=parent_fd)
            except (NotADirectoryError, OSError) as exc:
                try:
                    mode = os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode
                except (FileNotFoundError, NotADirectoryError):
                    return None
                except OSError as stat_exc:
                    what = f"checking the directory of {key!r} failed"
                    raise store._fail(what, stat_exc, key=key) from None
                if S_ISLNK(mode):
                    raise store._fail(
                        "the key leads outside the store root through a symbolic link", key=key
                    ) from None
                if not S_ISDIR(mode):
                    if create:
                        raise  # a file in the way of a directory to create: the move fails
                    return None
                raise store._fail(f"opening the directory of {key!r} failed", exc, key=key) from None
        return os.open(name, _CHILD_DIR_FLAGS, dir_fd=parent_fd)

    def __enter__(self) -> _Dirs:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()
        os.close(self._root)


def _valid(key: str) -> str:
    """``key`` if valid (:func:`~reclaim.stores.base.validate_key`), with a fast path for plain keys.

    A key with no empty segment, no segment starting with ``.``, no NUL and no
    leading or trailing ``/`` is valid; only the others take the full check.
    """
    if (
        key
        and key[0] not in "/."
        and key[-1] != "/"
        and "//" not in key
        and "/." not in key
        and "\x00" not in key
    ):
        return key
    return validate_key(key)


class _OpenDir:
    """One directory of the page walk: its descriptor, its ordered plan, where the walk is in it."""

    __slots__ = ("base", "fd", "in_page", "partial", "plan", "position", "skips", "store")

    def __init__(self, store: str, fd: int) -> None:
        self.store = store
        self.fd = fd
        self.base = ""
        self.plan: list[list[str] | str] = []
        self.position = 0
        self.partial = False
        self.skips: tuple[str, ...] = ()
        self.in_page = False
        """Whether the page being filled holds keys of this directory."""

    def runs(self, names: list[str], prefix: str) -> Iterator[list[str]]:
        """The keys of one run of file names of this directory, at most ``PAGE_SIZE`` at a time."""
        base = self.base
        for begin in range(0, len(names), PAGE_SIZE):
            chunk = names if len(names) <= PAGE_SIZE else names[begin : begin + PAGE_SIZE]
            keys = [base + name for name in chunk]
            if self.partial:
                keys = [key for key in keys if key.startswith(prefix)]
            if self.skips:
                keys = [key for key in keys if not key.startswith(self.skips)]
            if keys:
                yield keys

    def stat(self, name: str, key: str) -> ObjectInfo | None:
        """``fstatat`` of ``name`` in this directory; ``None`` if it is gone (or now a directory)."""
        if self.fd < 0:
            raise RuntimeError("a listing page was read after the walk left its directory")
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None  # removed since it was listed: gone, like a file deleted before the listing
        except OSError as exc:
            raise store_error(self.store, "stat failed", exc, key=key) from None
        if S_ISDIR(st.st_mode):
            return None
        return ObjectInfo(key, st.st_size, st.st_mtime)

    def close(self) -> None:
        """Close the descriptor; pages of this directory refuse ``info`` from now on."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


class _DirPage(KeyPage):
    """Runs of files of up to ``_PAGE_DIRS`` open directories; ``info`` is an ``fstatat`` relative to one."""

    __slots__ = ("_dirs", "_firsts")

    def __init__(self, keys: list[str], firsts: list[str], dirs: list[tuple[_OpenDir, int]]) -> None:
        super().__init__(keys)
        self._firsts = firsts
        self._dirs = dirs

    def info(self, key: str) -> ObjectInfo | None:
        """Size and mtime of ``key`` by ``fstatat`` on its open directory; ``None`` if it vanished."""
        dirs = self._dirs
        directory, cut = dirs[0] if len(dirs) == 1 else dirs[bisect_right(self._firsts, key) - 1]
        return directory.stat(key[cut:], key)


class _Filling:
    """The page being filled: runs of files from several directories, which stay open until it is read.

    Small directories (an archive sharded ``ab/cd/<hash>`` holds a few files
    in each) would make pages of a few keys, each paying the scan's per-page
    work; a page collects up to ``PAGE_SIZE`` keys from up to ``_PAGE_DIRS``
    directories instead, which bounds the descriptors held open.
    """

    __slots__ = ("dirs", "firsts", "held", "keys", "reading")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.firsts: list[str] = []
        self.dirs: list[tuple[_OpenDir, int]] = []
        self.held: list[_OpenDir] = []
        """Directories the walk has left whose keys are in this page: closed once it is read."""
        self.reading: list[_OpenDir] = []
        """The same for the page given out last, until the next one is asked for."""

    def fits(self, keys: list[str]) -> bool:
        return len(self.keys) + len(keys) <= PAGE_SIZE and len(self.dirs) < _PAGE_DIRS

    def add(self, keys: list[str], directory: _OpenDir) -> None:
        if self.keys:
            self.keys.extend(keys)
        else:
            self.keys = keys
        # a new segment whenever the directory changes: a parent's files may resume after a child's
        if not self.dirs or self.dirs[-1][0] is not directory:
            self.firsts.append(keys[0])
            self.dirs.append((directory, len(directory.base)))
        directory.in_page = True

    def release(self, directory: _OpenDir) -> None:
        """The walk is done with ``directory``: close it now, or once the page holding its keys is read."""
        if directory.in_page:
            self.held.append(directory)
        else:
            directory.close()

    def done(self) -> _DirPage:
        """The filled page, to be given out; :meth:`read` once the next page is asked for."""
        page = _DirPage(self.keys, self.firsts, self.dirs)
        for directory, _cut in self.dirs:
            directory.in_page = False
        self.reading, self.held = self.held, []
        self.keys, self.firsts, self.dirs = [], [], []
        return page

    def read(self) -> None:
        """The page given out last has been read: close the directories only it held."""
        for directory in self.reading:
            directory.close()
        self.reading = []

    def close(self) -> None:
        """Close every directory held (the walk ends or is abandoned)."""
        self.read()
        for directory in self.held:
            directory.close()
        self.held = []


def _plan(files: list[str], dirs: list[str]) -> list[list[str] | str]:
    """One directory's entries in key order: runs of file names (lists) and subdirectory names.

    Files sort by ``name``, directories by ``name + "/"`` (see :mod:`reclaim.stores._walk`).
    """
    if not dirs:
        files.sort()
        return [files] if files else []
    entries = sorted([(name, name) for name in files] + [(name + "/", None) for name in dirs])
    plan: list[list[str] | str] = []
    run: list[str] = []
    for sort_key, file_name in entries:
        if file_name is not None:
            run.append(file_name)
            continue
        if run:
            plan.append(run)
            run = []
        plan.append(sort_key[:-1])
    if run:
        plan.append(run)
    return plan


def _is_utf8(name: str) -> bool:
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes come back as lone surrogates
        return False
    return True


def _load_renameat2() -> Callable[..., int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return cast("Callable[..., int]", function)


_renameat2 = _load_renameat2()


def _rename_noreplace_at(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
    """Rename ``src`` to ``dst`` (names in directories ``src_fd``, ``dst_fd``), never replacing ``dst``.

    ``renameat2(RENAME_NOREPLACE)`` does it in one atomic step, raising
    ``FileExistsError`` for an existing ``dst``. Where the filesystem does not
    support it, a hard link (which also refuses an existing name) followed by
    unlinking ``src``: a crash in between leaves both names, so the bytes are
    kept either way.
    """
    if _renameat2 is not None:
        if _renameat2(src_fd, os.fsencode(src), dst_fd, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), src, None, dst)
    os.link(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False)
    os.unlink(src, dir_fd=src_fd)
