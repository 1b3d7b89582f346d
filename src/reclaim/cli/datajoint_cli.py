"""``reclaim datajoint …``: the DataJoint integration on the command line.

The connection and the stores come from DataJoint's own configuration
(``datajoint.json``, ``DJ_*`` variables); ``--schema`` names the schemas and
``--store`` the store. ``reclaim.datajoint`` (the ``datajoint`` extra) is
imported only when one of these commands runs, so the rest of the CLI works
without DataJoint installed.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reclaim.cli.app import _emit_json, _guarded, out
from reclaim.config.jsonable import to_jsonable
from reclaim.errors import ConfigError

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["datajoint_app"]

datajoint_app = typer.Typer(
    help="Collect a DataJoint 2 pipeline's stores, discovered from its schemas and dj.config.",
    no_args_is_help=True,
)

SchemaOption = Annotated[list[str], typer.Option("--schema", help="A schema to collect (repeatable).")]
StoreName = Annotated[str | None, typer.Option("--store", help="The DataJoint store (default: every store).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")]
Imports = Annotated[
    list[str] | None,
    typer.Option("--import", help="A module to import first (one that defines custom codecs; repeatable)."),
]


def _logs_to_stderr() -> None:
    """DataJoint logs to stdout by default (``DJ_LOG_STREAM``); stdout is the reports' (``--json``)."""
    os.environ.setdefault("DJ_LOG_STREAM", "stderr")
    for handler in logging.getLogger("datajoint").handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.__stdout__):
            handler.setStream(sys.stderr)


def _integration(imports: list[str] | None) -> ModuleType:
    _logs_to_stderr()
    try:
        module = importlib.import_module("reclaim.datajoint")
    except ImportError as exc:
        raise ConfigError(
            f"reclaim datajoint needs the extra: pip install 'reclaim[datajoint]' ({exc})"
        ) from None
    for name in imports or ():
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"cannot import {name!r}: {exc}", field="--import") from None
    _logs_to_stderr()  # also when the datajoint package was imported before
    return module


def _schemas(names: list[str]) -> tuple[Any, ...]:
    if not names:
        raise ConfigError("give at least one --schema", field="--schema")
    import datajoint as dj

    return tuple(dj.Schema(name, create_schema=False, create_tables=False) for name in names)


def _show(report: Any, as_json: bool) -> None:
    if as_json:
        _emit_json(report.to_dict() if hasattr(report, "to_dict") else to_jsonable(report))
        return
    from reclaim.cli.render import render_scan
    from reclaim.cli.render_lifecycle import render_lifecycle

    if hasattr(report, "stores") and hasattr(report, "started_at"):
        render_scan(report, out())
    else:
        render_lifecycle(report, out())


@datajoint_app.command()
def scan(
    schema: SchemaOption,
    store: StoreName = None,
    show: Annotated[int, typer.Option(help="Show up to N candidate files.")] = 0,
    imports: Imports = None,
    as_json: JsonOption = False,
) -> None:
    """Read-only: files in the schemas' subtrees, referenced, candidates and too young."""
    report = _guarded(
        lambda: _integration(imports).scan(*_schemas(schema), store_name=store, show=show), as_json=as_json
    )
    _show(report, as_json)


@datajoint_app.command()
def quarantine(
    schema: SchemaOption,
    store: StoreName = None,
    dry_run: DryRun = False,
    imports: Imports = None,
    as_json: JsonOption = False,
) -> None:
    """Phase 1: move (or mark) every unreferenced file of the schemas' subtrees."""
    report = _guarded(
        lambda: _integration(imports).quarantine(*_schemas(schema), store_name=store, dry_run=dry_run),
        as_json=as_json,
    )
    _show(report, as_json)


@datajoint_app.command()
def purge(
    schema: SchemaOption,
    store: StoreName = None,
    dry_run: DryRun = False,
    grace_seconds: Annotated[
        float | None, typer.Option(help="Purge what was quarantined at least this long ago.")
    ] = None,
    imports: Imports = None,
    as_json: JsonOption = False,
) -> None:
    """Phase 2: delete quarantined files past grace, each re-checked against every table now."""
    report = _guarded(
        lambda: _integration(imports).purge(
            *_schemas(schema), store_name=store, dry_run=dry_run, grace_seconds=grace_seconds
        ),
        as_json=as_json,
    )
    _show(report, as_json)


@datajoint_app.command()
def restore(
    path: Annotated[str | None, typer.Argument(help="A path or a glob ('_hash/ephys/*').")] = None,
    run: Annotated[int | None, typer.Option(help="Every file this run quarantined.")] = None,
    store: StoreName = None,
    dry_run: DryRun = False,
    as_json: JsonOption = False,
) -> None:
    """Bring quarantined files back, by path, glob, run or store."""
    report = _guarded(
        lambda: _integration(None).restore(path, run=run, store_name=store, dry_run=dry_run), as_json=as_json
    )
    _show(report, as_json)


@datajoint_app.command()
def status(store: StoreName = None, as_json: JsonOption = False) -> None:
    """How much is quarantined, the oldest file, the stores touched, the next purge."""
    integration = _integration(None)
    report = _guarded(lambda: integration.status(store_name=store), as_json=as_json)
    if as_json:
        data = report.to_dict()
        data["quarantine"] = to_jsonable(integration.quarantine_stats(report))
        _emit_json(data)
    else:
        out().print(integration.format_quarantine_stats(report), highlight=False)


@datajoint_app.command("config")
def config_command(schema: SchemaOption, store: StoreName = None, imports: Imports = None) -> None:
    """Print the reclaim.toml these schemas amount to (for a scheduled `reclaim run`)."""
    integration = _integration(imports)
    text = _guarded(
        lambda: integration.to_toml(integration.configuration(*_schemas(schema), store_name=store))
    )
    typer.echo(text)
