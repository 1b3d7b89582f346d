"""``reclaim distributed …`` and ``reclaim run --workers celery``: a run spread over Celery workers.

The coordinator runs here; the workers are Celery workers of
``reclaim.distributed.app`` started elsewhere (``celery -A
reclaim.distributed.app worker``). ``reclaim.distributed`` (the
``distributed`` extra) is imported only when one of these commands runs, so
the rest of the CLI works without Celery installed.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reclaim.cli.app import (
    EXIT_FINDINGS,
    ConfigOption,
    JsonOption,
    StoreOption,
    _config,
    _emit_json,
    _guarded,
    _progress,
    out,
)
from reclaim.errors import ConfigError

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["WORKERS", "distributed_app", "distributed_run"]

#: the engines ``--workers`` accepts
WORKERS = ("celery",)

distributed_app = typer.Typer(
    help="Work each store's key ranges on Celery workers: the coordinator's commands.",
    no_args_is_help=True,
)

Partitions = Annotated[
    int, typer.Option("--partitions", min=1, help="Key ranges per store, from its first-level listing.")
]
Splits = Annotated[
    list[str] | None,
    typer.Option(
        "--split", help="A split point of every store's key space (repeatable; overrides --partitions)."
    ),
]
Timeout = Annotated[
    float | None, typer.Option("--timeout", min=1, help="Fail when the ranges are not done after SECONDS.")
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")]
Show = Annotated[int, typer.Option(min=0, help="Show up to N sample candidates per store and collection.")]


def _integration() -> ModuleType:
    try:
        return importlib.import_module("reclaim.distributed")
    except ImportError as exc:
        raise ConfigError(
            f"--workers celery needs the extra: pip install 'reclaim[distributed]' ({exc})"
        ) from None


def _dispatcher(timeout: float | None) -> Any:
    try:
        module = importlib.import_module("reclaim.distributed.app")
    except ImportError as exc:
        raise ConfigError(
            f"--workers celery needs the extra: pip install 'reclaim[distributed]' ({exc})"
        ) from None
    return module.CeleryDispatcher(timeout=timeout)


def _boundaries(config: Any, splits: list[str] | None) -> dict[str, list[str]] | None:
    if not splits:
        return None
    from reclaim.lifecycle import resolve_config

    loaded = resolve_config(config)
    return {name: list(splits) for name in loaded.stores}


def distributed_run(
    config: Path,
    *,
    workers: str,
    partitions: int,
    splits: list[str] | None,
    timeout: float | None,
    dry_run: bool,
    show: int,
    fail_on_findings: bool,
    as_json: bool,
) -> None:
    """``reclaim run --workers celery``: the cycle with each store's ranges on the workers."""
    if workers not in WORKERS:
        raise typer.BadParameter(f"{workers!r} is not one of {', '.join(WORKERS)}", param_hint="--workers")

    def work() -> Any:
        module = _integration()
        target = _config(config)
        return module.run(
            target,
            dispatcher=_dispatcher(timeout),
            partitions=partitions,
            boundaries=_boundaries(target, splits),
            show=show,
            dry_run=dry_run,
        )

    with _progress():
        report = _guarded(work, as_json=as_json)
    if as_json:
        _emit_json(report.to_dict())
    else:
        from reclaim.cli.render_rows import render_cycle

        render_cycle(report, out())
    if fail_on_findings and report.findings:
        raise typer.Exit(EXIT_FINDINGS)


@distributed_app.command("run")
def run_command(
    config: ConfigOption = Path("reclaim.toml"),
    partitions: Partitions = 4,
    split: Splits = None,
    timeout: Timeout = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")
    ] = False,
    show: Show = 0,
    fail_on_findings: Annotated[
        bool, typer.Option(help="Exit 5 when a report-only store or collection has candidates.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """One scheduled cycle, each store's purge and quarantine worked range by range on the workers."""
    distributed_run(
        config,
        workers="celery",
        partitions=partitions,
        splits=split,
        timeout=timeout,
        dry_run=dry_run,
        show=show,
        fail_on_findings=fail_on_findings,
        as_json=as_json,
    )


@distributed_app.command("scan")
def scan_command(
    config: ConfigOption = Path("reclaim.toml"),
    store: StoreOption = None,
    partitions: Partitions = 4,
    split: Splits = None,
    timeout: Timeout = None,
    show: Show = 0,
    as_json: JsonOption = False,
) -> None:
    """Read-only: every store scanned range by range on the workers (row collections are left out)."""

    def work() -> Any:
        module = _integration()
        target = _config(config)
        return module.scan(
            target,
            dispatcher=_dispatcher(timeout),
            partitions=partitions,
            boundaries=_boundaries(target, split),
            stores=store,
            show=show,
        )

    report = _guarded(work, as_json=as_json)
    if as_json:
        _emit_json(report.to_dict())
    else:
        from reclaim.cli.render import render_scan

        render_scan(report, out())
