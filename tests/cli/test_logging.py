"""``--version``, ``-v``, ``--log-format``, ``--log-file``, ``RECLAIM_LOG_LEVEL`` and shell completion.

Real processes on the demo archive; the lease's log lines are the records looked at.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import reclaim
from cli.runner import reclaim as run_reclaim

SECRET = "s3cr3t-holder-value"
TOOK = "took the catalog lease for"


def reclaim_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_reclaim(*args, cwd=cwd, columns=200, env=env)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("logging")
    built = reclaim_cli("demo", str(directory / "demo"), "--json", cwd=directory)
    assert built.returncode == 0, built.stderr
    return directory / "demo" / "reclaim.toml"


def test_version(tmp_path: Path) -> None:
    result = reclaim_cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"reclaim {reclaim.__version__}"


def test_quiet_by_default_and_verbose_on_request(demo: Path) -> None:
    quiet = reclaim_cli("recover", "-c", str(demo), cwd=demo.parent)
    assert quiet.returncode == 0, quiet.stderr
    assert TOOK not in quiet.stderr
    verbose = reclaim_cli("-v", "recover", "-c", str(demo), cwd=demo.parent)
    assert verbose.returncode == 0, verbose.stderr
    assert f" INFO reclaim.catalog.lease: {TOOK} " in verbose.stderr
    from_env = reclaim_cli("recover", "-c", str(demo), cwd=demo.parent, env={"RECLAIM_LOG_LEVEL": "info"})
    assert TOOK in from_env.stderr


def test_json_log_records(demo: Path) -> None:
    result = reclaim_cli("-v", "--log-format", "json", "recover", "-c", str(demo), cwd=demo.parent)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    took = [r for r in records if r["message"].startswith(TOOK)]
    assert len(took) == 1
    assert took[0]["level"] == "info"
    assert took[0]["logger"] == "reclaim.catalog.lease"
    assert "time" in took[0]


def test_log_file(demo: Path, tmp_path: Path) -> None:
    log = tmp_path / "reclaim.log"
    for _ in range(2):
        result = reclaim_cli("-v", "--log-file", str(log), "recover", "-c", str(demo), cwd=demo.parent)
        assert result.returncode == 0, result.stderr
        assert TOOK not in result.stderr
    assert log.read_text(encoding="utf-8").count(TOOK) == 2  # appended, not replaced


def test_log_records_are_redacted(demo: Path, tmp_path: Path) -> None:
    # the lease's holder is the user name; make it a secret: the password of a database URL
    config = tmp_path / "reclaim.toml"
    text = demo.read_text(encoding="utf-8")
    spare = '\n[databases.spare]\nurl = "postgresql+psycopg://gc:${GC_SECRET}@127.0.0.1:1/x"\n'
    config.write_text(text + spare + f'\n[catalog]\nurl = "sqlite:///{demo.parent}/reclaim-catalog.sqlite"\n')
    env = {"GC_SECRET": SECRET, "LOGNAME": SECRET, "USER": SECRET}
    for log_format in ("text", "json"):
        result = reclaim_cli(
            "-v", "--log-format", log_format, "recover", "-c", str(config), cwd=tmp_path, env=env
        )
        assert result.returncode == 0, result.stderr
        assert TOOK in result.stderr
        assert SECRET not in result.stderr
        assert "***@" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["recover"], {"RECLAIM_LOG_LEVEL": "chatty"}, "RECLAIM_LOG_LEVEL"),
        (["--log-format", "xml", "recover"], {}, "--log-format"),
        (["--log-file", "/nonexistent/dir/x.log", "recover"], {}, "--log-file"),
    ],
)
def test_bad_logging_options(demo: Path, args: list[str], env: dict[str, str], fragment: str) -> None:
    result = reclaim_cli(*args, "-c", str(demo), cwd=demo.parent, env=env)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_shell_completion(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "reclaim"
    env = {**os.environ, "SHELL": "/bin/bash"}
    # run from bash, as a user does: Typer detects the shell from the parent process
    shown = subprocess.run(
        ["bash", "-c", f"{shlex.quote(str(script))} --show-completion"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "complete -o default -F _reclaim_completion reclaim" in shown.stdout
    # what bash runs on TAB after "reclaim sc"
    env.update({"_RECLAIM_COMPLETE": "complete_bash", "COMP_WORDS": "reclaim sc", "COMP_CWORD": "1"})
    completed = subprocess.run([script], capture_output=True, text=True, env=env, check=False)
    assert completed.stdout.split() == ["scan"]
