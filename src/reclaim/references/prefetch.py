"""Reading a reference stream ahead in a thread, so that the database's work overlaps the listing's.

A scan asks a source for its next page only when the listing has passed the
last one, and then waits for the server (a round trip; on PostgreSQL the sort
before the first row). :func:`prefetched` reads the pages in a thread of its
own, at most ``depth`` pages ahead, while the scan lists the store: the
server's time and the driver's socket waits (which release the GIL) overlap
the listing. The pages, their order, the source's checks and its counters are
exactly those of the stream read in place: the stream runs unchanged in the
thread, and its error (a failed query, an order violation, an empty source)
is raised to the reader at the point where the stream failed. A reader that
stops early stops the thread, which closes the stream (and its cursor).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, Final

__all__ = ["prefetched"]

DEPTH: Final = 4
"""Pages read ahead: memory is at most this many pages beyond the one being merged."""
_DONE: Final = object()


def prefetched(pages: Iterator[list[str]], *, name: str, depth: int = DEPTH) -> Iterator[list[str]]:
    """The pages of ``pages``, read ahead in a daemon thread (see the module docstring).

    The thread starts with the first page asked for: a reader that never asks
    starts none.
    """
    ahead: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for page in pages:
                if not put((page, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the reader, raised there
            put((_DONE, exc))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()  # in this thread, which ran the stream: its cursor is released here

    thread = threading.Thread(target=read, name=f"reclaim-prefetch-{name}", daemon=True)
    thread.start()
    try:
        while True:
            page, error = ahead.get()
            if page is _DONE:
                if error is not None:
                    raise error
                return
            yield page
    finally:
        stop.set()
        thread.join()
