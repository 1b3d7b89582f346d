"""``reclaim incremental …``: the queue triggers of the incremental mode, and its cycle.

``install`` / ``uninstall`` put the triggers on (or take them off) every
reference source of a store; ``status`` shows them with the queue's depth and
the last full scan; ``run`` is ``reclaim run --incremental``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from reclaim.api.incremental import (
    IncrementalStatus,
    TriggersReport,
    incremental_status,
    install,
    uninstall,
)
from reclaim.cli.app import (
    ConfigOption,
    DryRunOption,
    FailOnFindings,
    JsonOption,
    StoreOption,
    _config,
    _emit_json,
    _guarded,
    out,
    run_cycle,
)
from reclaim.config.durations import format_duration

__all__ = ["incremental_app"]

incremental_app = typer.Typer(
    help="Incremental collection: triggers queue the keys references let go; the cycle looks only at those.",
    no_args_is_help=True,
)


def _render_triggers(report: TriggersReport, as_json: bool) -> None:
    if as_json:
        _emit_json(report.to_dict())
        return
    console = out()
    for s in report.sources:
        console.print(
            f"store [bold]{s.store}[/], source {s.source} ({s.database}.{s.table}): {s.state} "
            f"{', '.join(s.triggers)}",
            highlight=False,
        )
    if not report.sources:
        console.print("no triggers")
    if report.run_id is not None:
        console.print(f"run {report.run_id} recorded; see 'reclaim runs {report.run_id}'")


def _triggers_command(
    action: Callable[..., TriggersReport],
    config: Path,
    store: list[str] | None,
    *,
    dry_run: bool,
    as_json: bool,
) -> None:
    """``install`` or ``uninstall`` on the stores named (all if none), rendered; errors as every command's."""
    report = _guarded(lambda: action(_config(config), stores=store, dry_run=dry_run), as_json=as_json)
    _render_triggers(report, as_json)


@incremental_app.command("install")
def install_command(
    config: ConfigOption = Path("reclaim.toml"),
    store: StoreOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Install the queue triggers on every reference source of each store (refusing unwatchable ones)."""
    _triggers_command(install, config, store, dry_run=dry_run, as_json=as_json)


@incremental_app.command("uninstall")
def uninstall_command(
    config: ConfigOption = Path("reclaim.toml"),
    store: StoreOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Remove the triggers reclaim installed (and, with the last store, the queue table)."""
    _triggers_command(uninstall, config, store, dry_run=dry_run, as_json=as_json)


def _render_status(report: IncrementalStatus) -> None:
    console = out()
    for s in report.stores:
        last = f"{s.last_full_scan:%Y-%m-%d %H:%M} UTC" if s.last_full_scan else "none"
        oldest = f", oldest {s.oldest_queued:%Y-%m-%d %H:%M}" if s.oldest_queued else ""
        verdict = "[green]ready[/]" if s.ready else "[yellow]not ready[/]"
        console.print(
            f"store [bold]{s.store}[/]: {verdict}; {s.queued:,} keys queued{oldest}; last full scan "
            f"within {format_duration(s.full_scan_every)}: {last}",
            highlight=False,
        )
        for src in s.sources:
            why = f" ({src.reason})" if src.reason else ""
            console.print(f"  {src.source} ({src.database}.{src.table}): {src.state}{why}", highlight=False)


@incremental_app.command("status")
def status_command(
    config: ConfigOption = Path("reclaim.toml"),
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each store's triggers, queued keys and last full scan: whether the incremental cycle would run."""
    report = _guarded(lambda: incremental_status(_config(config), stores=store), as_json=as_json)
    if as_json:
        _emit_json(report.to_dict())
    else:
        _render_status(report)


@incremental_app.command("run")
def run_command(
    config: ConfigOption = Path("reclaim.toml"),
    dry_run: DryRunOption = False,
    show: Annotated[int, typer.Option(min=0, help="Show up to N sample candidates per collection.")] = 0,
    fail_on_findings: FailOnFindings = False,
    as_json: JsonOption = False,
) -> None:
    """The incremental cycle: 'reclaim run --incremental'."""
    run_cycle(
        config,
        dry_run=dry_run,
        show=show,
        incremental=True,
        fail_on_findings=fail_on_findings,
        as_json=as_json,
    )
