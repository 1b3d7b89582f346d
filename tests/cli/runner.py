"""The command line as a user runs it: a real ``python -m reclaim`` process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: variables of the test's own environment that would change what the command does
_UNSET = ("RECLAIM_LOG_LEVEL", "RECLAIM_FAULT", "RECLAIM_PAUSE")


def reclaim(
    *args: str, cwd: Path, columns: int = 80, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``reclaim ARGS`` in ``cwd`` on a terminal ``columns`` wide; never raises on its exit code.

    ``env`` adds to (or overrides) the environment the tests run in.
    """
    environment = {k: v for k, v in os.environ.items() if k not in _UNSET}
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**environment, "COLUMNS": str(columns), **(env or {})},
        timeout=120,
        check=False,
    )
