"""A store in a local directory (``file:///srv/blobs`` or a plain path).

The specialisation exists for three reasons:

- **A listing without path lookups.** The tree is walked with ``os.scandir``
  on a descriptor of each directory, its entries sorted by name (``name + "/"``
  for directories) so that the keys come out in byte order; whether an entry
  is a directory comes from the directory entry's type (``d_type``), and a
  file's size and mtime from ``fstatat`` relative to the open directory (no
  path resolved, no symlink followed), so the scan never stats a key again.
  Memory is proportional to the largest single directory.
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
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from secrets import token_hex
from stat import S_ISDIR, S_ISLNK
from types import TracebackType
from typing import cast

from fsspec.implementations.local import LocalFileSystem

from reclaim.stores._walk import DirEntry
from reclaim.stores.base import ObjectInfo, validate_key
from reclaim.stores.fsspec_store import FsspecStore

__all__ = ["LocalStore"]

log = logging.getLogger(__name__)

_Entries = list[DirEntry]
_TMP_PREFIX = ".reclaim-tmp-"
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
#: directory descriptors a batch keeps open at most (least recently used closed first)
_OPEN_DIRS = 256
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW


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
                return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
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
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)

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
