"""A store in process memory (``memory://name``), for tests and ``reclaim demo``.

It is fsspec's memory filesystem behind the generic :class:`FsspecStore`, so
it also exercises the generic per-directory listing that serves ``gs://``,
``az://`` and the other object stores. Its contents live in the process (shared
by every ``memory://`` store with the same name) and vanish when it exits;
listing holds one directory's entries in memory at a time, which for a
test or demo backend is all of them at worst. Not for real archives.
"""

from __future__ import annotations

import fsspec

from reclaim.errors import StoreError
from reclaim.stores.fsspec_store import FsspecStore

__all__ = ["MemoryStore"]


class MemoryStore(FsspecStore):
    """A store over fsspec's in-memory filesystem; ``memory://demo/blobs`` is rooted at ``/demo/blobs``.

    Moves are copy + delete (``atomic_move`` is false), as on the object stores
    it stands in for.
    """

    def __init__(self, name: str, url: str) -> None:
        fs = fsspec.filesystem("memory")
        root = str(fs._strip_protocol(url))
        if not root.strip("/"):
            raise StoreError(name, "a memory:// URL needs a name, e.g. memory://demo")
        super().__init__(name, url, fs, root)
