"""Every ``reclaim …`` command in the README's code blocks runs, against the demo archive.

Commands are taken from the fenced blocks (sh, cron, systemd); the shell around
them (``.venv/bin/``, redirections, ``||``, comments, environment assignments)
is dropped or applied. The DANDI names of the examples are mapped onto the demo
(collection ``assets`` -> ``uploads``, run 42 -> run 1, the config path). A
command fails the test on a traceback or an exit code other than the one
expected for it; a new README command without an entry below runs with
exit 0 expected.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
LANGUAGES = {"sh", "bash", "console", "cron", "ini"}  # unlabelled blocks are program output
#: commands that need a server or a bucket the demo does not have
NEEDS_SERVICES = ("s3://", "postgresql", "mysql", "gs://", "az://")
#: commands that run until stopped (a server): tests/dashboard starts ``reclaim serve`` for real
SERVERS = ("serve",)
#: commands that need Celery workers on a broker: tests/distributed runs them against real ones
NEEDS_WORKERS = ("distributed",)
#: documented exit codes other than 0, per command as written in the README
EXPECTED = {
    "restore --collection assets 4711": {8},  # no archived row with that primary key: exit 8
    # the demo's zarr (prefix) and recordings (JSON path) sources cannot be watched by a trigger
    "incremental install --config /etc/reclaim/reclaim.toml": {2},
    "incremental run --dry-run --config /etc/reclaim/reclaim.toml": {7},
    "run --incremental --config /etc/reclaim/reclaim.toml": {7},
}
DEMO_NAMES = [("--collection assets", "--collection uploads"), ("--run 42", "--run 1")]


def readme_commands() -> list[str]:
    commands = []
    for match in re.finditer(r"^ *```(\w*)\n(.*?)^ *```", README.read_text(encoding="utf-8"), re.S | re.M):
        if match.group(1) not in LANGUAGES:
            continue
        for line in match.group(2).splitlines():
            found = re.search(r"(?:^|[\s/=])((?:[A-Z_]+=\S+ )*)reclaim (\S.*)$", line)
            if found is None or line.lstrip().startswith("#") or "Description=" in line:
                continue
            command = re.split(r"\s#|\s>|\s\|\|?|\s&&", found.group(2))[0].strip()
            if command.split(" ", 1)[0] in SERVERS + NEEDS_WORKERS or "--workers celery" in command:
                continue
            if command and not any(service in line for service in NEEDS_SERVICES):
                commands.append((found.group(1) + command).strip())
    return commands


COMMANDS = readme_commands()


def test_the_readme_shows_commands() -> None:
    words = {word for command in COMMANDS for word in shlex.split(command)}
    assert {"demo", "init", "scan", "check", "restore", "run", "purge", "status", "--version"} <= words


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo archive the README's first command builds (``reclaim demo`` in an empty directory)."""
    directory = tmp_path_factory.mktemp("readme")
    built = subprocess.run(
        [sys.executable, "-m", "reclaim", "demo"], cwd=directory, capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    return directory / "reclaim-demo"


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command(demo: Path, command: str) -> None:
    env = {**os.environ, "COLUMNS": "80"}
    words = shlex.split(command)
    while words and re.match(r"^[A-Z_]+=", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    text = " ".join(words)
    for readme, here in DEMO_NAMES:
        text = text.replace(readme, here)
    text = re.sub(r"--config \S+", f"--config {demo / 'reclaim.toml'}", text)
    arguments = shlex.split(text)
    if arguments[:1] == ["demo"]:
        arguments.append(str(demo.parent / "again"))  # the fixture built ./reclaim-demo already
    result = subprocess.run(
        [sys.executable, "-m", "reclaim", *arguments],
        cwd=demo,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    expected = EXPECTED.get(" ".join(words), {0})
    assert result.returncode in expected, (command, result.returncode, result.stderr)
