"""The command line as a user runs it: a real ``python -m reclaim`` process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def reclaim(*args: str, cwd: Path, columns: int = 80) -> subprocess.CompletedProcess[str]:
    """Run ``reclaim ARGS`` in ``cwd`` on a terminal ``columns`` wide; never raises on its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": str(columns)},
        timeout=120,
        check=False,
    )
