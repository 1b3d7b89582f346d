"""``python -m cProfile -o OUT -m MODULE ...``, but profiling every thread, not just the main one.

``python -m cProfile`` sees the main thread only; reclaim's quarantine works in
a pool of threads and s3fs runs its requests on an event loop in a thread of
its own, so their work would show only as the main thread waiting on a lock.
Here each ``threading.Thread`` runs under a ``cProfile.Profile`` of its own and
all of them are merged with the main thread's into one stats file (own times
add up over threads; a thread that waits shows the wait as ``acquire`` or
``select``).

    .venv/bin/python bench/cprofile_threads.py OUT.prof reclaim collect --config reclaim.toml --json
"""

from __future__ import annotations

import cProfile
import pstats
import runpy
import sys
import threading


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    output, module, *arguments = sys.argv[1:]
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    original = threading.Thread.run

    def profiled(thread: threading.Thread) -> None:
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        profile.enable()
        try:
            original(thread)
        finally:
            profile.disable()

    threading.Thread.run = profiled  # type: ignore[method-assign,assignment]
    sys.argv = [module, *arguments]
    main_profile = cProfile.Profile()
    main_profile.enable()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        main_profile.disable()
        stats = pstats.Stats(main_profile)
        with lock:
            for profile in profiles:
                stats.add(profile)
        stats.dump_stats(output)


if __name__ == "__main__":
    main()
