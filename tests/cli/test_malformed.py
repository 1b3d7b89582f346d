"""No input makes reclaim print a traceback: every command, malformed arguments and configs.

A case passes when the exit code is a documented one (never 1, "unexpected
error") and stderr holds no Python traceback. Every kind of malformed input
runs as a real process at least once (what a user sees, interpreter shutdown
included); the cross product of every command with every malformed config
runs in process through the same Typer app (an exception escaping a command
is caught there and fails the case just the same), since starting the
interpreter and importing reclaim is most of a process's cost.
"""

from __future__ import annotations

import subprocess
import typing
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli.runner import reclaim
from reclaim.cli import app as typer_app
from reclaim.cli.app import app as cli_app

DOCUMENTED = {0, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12}
CALLBACKS = {
    (c.name or c.callback.__name__): c.callback
    for c in typer_app.registered_commands
    if c.callback is not None
}
COMMANDS = sorted(CALLBACKS)


def assert_clean(result: subprocess.CompletedProcess[str], *, expected: set[int] = DOCUMENTED) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Exception ignored" not in result.stderr, result.stderr
    assert result.returncode in expected, (result.returncode, result.stderr)


def assert_clean_in_process(args: list[str], *, cwd: Path, expected: set[int]) -> Result:
    """Run ``reclaim ARGS`` through the Typer app in this process; as :func:`assert_clean`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        result = CliRunner().invoke(cli_app, args)
    escaped = result.exception if not isinstance(result.exception, SystemExit) else None
    assert escaped is None, f"{args}: {escaped!r}"
    assert "Traceback" not in result.stderr, result.stderr
    assert result.exit_code in expected, (args, result.exit_code, result.stderr)
    return result


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("malformed")
    built = reclaim("demo", str(directory / "demo"), "--json", cwd=directory)
    assert built.returncode == 0, built.stderr
    return directory / "demo" / "reclaim.toml"


def numeric_cases() -> list[tuple[str, str, str]]:
    """(command, option, bad value) for every numeric option of every command."""
    cases = []
    for name in COMMANDS:
        for parameter, hint in typing.get_type_hints(CALLBACKS[name], include_extras=True).items():
            if typing.get_origin(hint) is not typing.Annotated:
                continue
            base, *extras = typing.get_args(hint)
            kinds = set(typing.get_args(base)) | {base}
            if not kinds & {int, float} or bool in kinds:
                continue
            declared = [
                d for e in extras for d in (getattr(e, "param_decls", None) or ()) if d.startswith("--")
            ]
            flag = declared[0] if declared else "--" + parameter.replace("_", "-")
            if type(extras[0]).__name__ == "ArgumentInfo":
                flag = ""
            bad = ["abc", "-1"]
            if float in kinds:
                bad += ["2", "nan", "inf"]
            cases += [(name, flag, value) for value in bad]
    return cases


@pytest.mark.parametrize(("command", "option", "value"), numeric_cases())
def test_every_numeric_option_is_validated(demo: Path, command: str, option: str, value: str) -> None:
    # in process: the parsing is click's, the same in a process; test_unknown_option runs real ones
    arguments = [option, value] if option else [value]
    result = assert_clean_in_process(
        [command, *arguments, "--config", str(demo)], cwd=demo.parent, expected={2}
    )
    assert "Invalid value" in result.stderr or "No such option" in result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_option(demo: Path, command: str) -> None:
    assert_clean(reclaim(command, "--no-such-option", cwd=demo.parent), expected={2})


CONFIGS: dict[str, object] = {
    "missing": None,
    "directory": "<dir>",
    "not toml": "[stores\nurl = ",
    "binary": "\udcff\udcfe",
    "wrong shapes": "stores = 3\n",
    "ftp store": '[stores.s]\nurl = "ftp://127.0.0.1/x"\n',
    "unknown scheme": '[stores.s]\nurl = "nope://x"\n',
    "bad duration": '[stores.s]\nurl = "memory://x"\nmin_age = "soon"\n',
    "bad fraction": '[stores.s]\nurl = "memory://x"\nmax_fraction = 2\n',
    "bad catalog url": '[catalog]\nurl = "nonsense"\n',
    "missing sqlite dir": '[databases.d]\nurl = "sqlite:///nowhere/x.sqlite"\n'
    '[stores.s]\nurl = "memory://x"\n[[stores.s.references]]\ndatabase = "d"\ntable = "t"\ncolumn = "c"\n',
}


def _configs() -> list[object]:
    return [pytest.param(value, id=kind) for kind, value in CONFIGS.items()]


def _write(config: Path, text: str | None) -> None:
    if text == "<dir>":
        config.mkdir()
    elif text is not None:
        config.write_bytes(text.encode("utf-8", "surrogateescape"))


#: commands that read the config; without a selection restore refuses before reading it.
#: ``serve`` runs until stopped once its config is valid: tests/dashboard feeds it bad ones
CONFIG_COMMANDS = [c for c in COMMANDS if c not in {"demo", "init", "serve"}]
NEEDS = {"restore": ["--since", "1d"]}


@pytest.mark.parametrize("text", _configs())
def test_malformed_configs_in_a_real_process(tmp_path: Path, text: str | None) -> None:
    config = tmp_path / "reclaim.toml"
    _write(config, text)
    assert_clean(reclaim("scan", "--config", str(config), cwd=tmp_path), expected={2, 4, 6})


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
@pytest.mark.parametrize("text", _configs())
def test_malformed_configs(tmp_path: Path, command: str, text: str | None) -> None:
    config = tmp_path / "reclaim.toml"
    _write(config, text)
    args = [command, *NEEDS.get(command, []), "--config", str(config)]
    assert_clean_in_process(args, cwd=tmp_path, expected={2, 4, 6})


@pytest.mark.parametrize(
    "args",
    [
        ["restore", "--since", "next tuesday"],
        ["restore", "some/key"],
        ["restore", "some/key", "--store", "nope"],
        ["restore", "--run", "99999"],
        ["restore", "--collection", "nope", "1"],
        ["runs", "99999"],
        ["runs", "abc"],
        ["scan", "--store", "nope"],
        ["scan", "--collection", "nope"],
        ["check", "--store", "nope"],
        ["quarantine", "--store", ""],
        ["purge", "--store", "nope"],
        ["lock", "--force"],
    ],
)
def test_malformed_arguments(demo: Path, args: list[str]) -> None:
    assert_clean(reclaim(*args, "--config", str(demo), cwd=demo.parent), expected={0, 2, 8})


def test_demo_into_a_file(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("not a directory")
    assert_clean(reclaim("demo", str(tmp_path / "taken"), cwd=tmp_path), expected={2})


def test_init_over_a_directory(tmp_path: Path) -> None:
    (tmp_path / "reclaim.toml").mkdir()
    assert_clean(reclaim("init", "--config", str(tmp_path / "reclaim.toml"), cwd=tmp_path), expected={2})
