"""``manage.py reclaim <command>``: the ``reclaim`` CLI run with the project's configuration.

Every command of the CLI (``scan``, ``check``, ``quarantine``, ``purge``,
``run``, ``restore``, ``status``, ``runs``, ``lock``, ``recover``, ...) with
its options, output and exit codes: the CLI itself is run, given the
configuration built from the settings and models
(:func:`reclaim.django.conf.reclaim_config`) instead of a ``--config`` file.
Two commands are the project's own:

- ``manage.py reclaim config`` prints the equivalent ``reclaim.toml``
  (credentials as ``${VARIABLES}``);
- ``manage.py reclaim init`` creates or upgrades the catalog (there is no
  file to write).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand

from reclaim.errors import ReclaimError

#: options ``django-admin`` reads itself, left out of what the CLI is given
_DJANGO_OPTIONS = ("--settings", "--pythonpath")


def _cli_arguments(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _DJANGO_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{o}=" for o in _DJANGO_OPTIONS)):
            out.append(arg)
    return out


class Command(BaseCommand):
    help = "reclaim, configured from this project's settings and models (see 'manage.py reclaim --help')."

    def run_from_argv(self, argv: list[str]) -> None:
        """Hand every argument after ``reclaim`` to the CLI; exit with its exit code."""
        sys.exit(run(_cli_arguments(argv[2:]), prog_name=f"{argv[0]} {argv[1]}"))

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("args", nargs="*")

    def handle(self, *args: str, **options: Any) -> None:
        """For ``call_command("reclaim", "scan", "--json")``: a non-zero exit code raises ``SystemExit``."""
        code = run(list(args), prog_name="reclaim")
        if code:
            raise SystemExit(code)


def run(args: list[str], *, prog_name: str) -> int:
    """Run the CLI with ``args`` and the project's configuration; return its exit code."""
    from reclaim.cli.app import app, preset_config
    from reclaim.django.conf import config_toml, reclaim_config

    if not args or args[0] in ("--help", "-h", "--version"):
        return _invoke(app, args or ["--help"], prog_name)
    command = _command(args)
    if any(arg in ("--config", "-c") or arg.startswith("--config=") for arg in args):
        sys.stderr.write(
            "warning: --config is ignored here: the configuration comes from the settings "
            "(RECLAIM['config'] names a reclaim.toml to add)\n"
        )
    try:
        if command == "config":
            sys.stdout.write(config_toml())
            return 0
        config = reclaim_config()
        if command == "init":
            return _init(config, as_json="--json" in args)
    except ReclaimError as exc:
        return _fail(exc, as_json="--json" in args)
    with preset_config(config):
        return _invoke(app, args, prog_name)


def _command(args: list[str]) -> str:
    """The command word: the first argument that is neither a global option nor its value."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--log-format", "--log-file"):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return ""


def _invoke(app: Any, args: list[str], prog_name: str) -> int:
    try:
        app(args=args, prog_name=prog_name)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


def _fail(exc: ReclaimError, *, as_json: bool) -> int:
    sys.stderr.write(f"error: {exc}\n")
    if as_json:
        document = {"type": type(exc).__name__, "message": str(exc), "exit_code": exc.exit_code}
        sys.stdout.write(json.dumps({"error": document}, indent=2) + "\n")
    return exc.exit_code


def _init(config: Any, *, as_json: bool) -> int:
    from reclaim.catalog import open_catalog
    from reclaim.config import mask_url

    catalog = open_catalog(config.catalog)
    try:
        revision = catalog.upgrade()
    finally:
        catalog.dispose()
    url = mask_url(str(config.catalog.url))
    if as_json:
        sys.stdout.write(json.dumps({"catalog_url": url, "catalog_revision": revision}, indent=2) + "\n")
    else:
        sys.stdout.write(f"catalog {url} is at revision {revision}\n")
    return 0
