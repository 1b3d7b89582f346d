"""The ``reclaim`` command: a thin Typer adapter over :mod:`reclaim.api`.

Exit codes (also in the README): 0 success; 1 unexpected error; 2 configuration
error; 3 reference source or collection table error; 4 store error; 5 findings
with ``--fail-on-findings``; 6 catalog error; 7 a safety guard refused to
proceed; 8 unknown key or run; 9 a restored row's primary key is taken again;
11 another collector holds the lease; 12 the lease was lost during the run;
130 interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from reclaim import api
from reclaim.cli.logs import LogFormat, configure_logging
from reclaim.config import Config, parse_duration, redact
from reclaim.errors import ConfigError, ReclaimError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["EXIT_FINDINGS", "app", "main", "preset_config"]

EXIT_FINDINGS = 5

log = logging.getLogger(__name__)

app = typer.Typer(
    name="reclaim",
    help="Safe garbage collection for blob storage referenced by relational databases.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        import reclaim

        sys.stdout.write(f"reclaim {reclaim.__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _options(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output: -v info, -vv debug.")
    ] = 0,
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="Log records as text or one JSON object per line.")
    ] = "text",
    log_file: Annotated[
        Path | None, typer.Option("--log-file", help="Append log records to this file instead of stderr.")
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print reclaim's version and exit."
        ),
    ] = False,
) -> None:
    """Logging goes to stderr at WARNING unless -v, --log-file or RECLAIM_LOG_LEVEL say otherwise."""
    _guarded(lambda: configure_logging(verbose, log_format, log_file))


# Rich (and the renderers built on it) is imported on first use, so a ``--json``
# run, which never renders, does not pay for it in start-up time or memory
@cache
def out() -> Console:
    """The console for results (stdout)."""
    from rich.console import Console

    return Console()


@cache
def err() -> Console:
    """The console for errors and progress (stderr)."""
    from rich.console import Console

    return Console(stderr=True)


ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="RECLAIM_CONFIG", help="Path of reclaim.toml."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
StoreOption = Annotated[list[str] | None, typer.Option("--store", "-s", help="Only this store (repeatable).")]
CollectionOption = Annotated[
    list[str] | None, typer.Option("--collection", help="Only this row collection (repeatable).")
]
FailOnFindings = Annotated[
    bool, typer.Option(help="Exit 5 when a report-only store or collection has candidates.")
]

T = TypeVar("T")


_preset: ContextVar[Config | None] = ContextVar("reclaim_cli_preset", default=None)


@contextmanager
def preset_config(config: Config) -> Iterator[None]:
    """Run commands with ``config`` instead of reading ``--config`` (for ``manage.py reclaim``)."""
    token = _preset.set(config)
    try:
        yield
    finally:
        _preset.reset(token)


def _config(path: Path) -> Config | Path:
    preset = _preset.get()
    return path if preset is None else preset


def _emit_json(data: Any) -> None:
    sys.stdout.write(redact(json.dumps(data, indent=2, default=str)) + "\n")


#: what an error may say about itself under ``--json`` (``ConfigError.value`` is left out: it may be a secret)


def _guarded(work: Callable[[], T], *, as_json: bool = False) -> T:
    """Run ``work``; turn reclaim's errors into a message and their exit code.

    With ``as_json`` the error goes to stdout as ``{"error": {...}}`` (type,
    message, exit code and what it is about), so a cron job capturing stdout
    keeps it; the human line still goes to stderr.
    """
    try:
        return work()
    except ReclaimError as exc:
        from rich.markup import escape

        # escaped: messages hold brackets ("pip install 'reclaim[s3]'") that are not markup
        err().print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        if as_json:
            _emit_json({"error": _error_document(exc)})
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err().print("interrupted")
        if as_json:
            _emit_json({"error": {"type": "Interrupted", "message": "interrupted", "exit_code": 130}})
        raise typer.Exit(130) from None
    except Exception as exc:
        # a bug, not an input reclaim refuses: one line for the operator, the traceback at -vv
        log.debug("unexpected error", exc_info=True)
        message = f"unexpected {type(exc).__name__}: {exc} (a bug: please report it with the output of -vv)"
        from rich.markup import escape

        err().print(f"[bold red]error:[/] {escape(redact(message))}", highlight=False)
        if as_json:
            document = {"type": type(exc).__name__, "message": redact(message), "exit_code": 1}
            _emit_json({"error": document})
        raise typer.Exit(1) from None


def _error_document(exc: ReclaimError) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": type(exc).__name__,
        "message": str(exc),  # redacted when the error was made (reclaim.errors)
        "exit_code": exc.exit_code,
    }
    for name, value in exc.about().items():
        document[name] = redact(value)
    return document


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int], None] | None]:
    """A live 'listed N objects' line on stderr while a store is listed."""
    if not enabled or not err().is_terminal:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err(), transient=True
    ) as progress:
        tasks: dict[str, Any] = {}

        def update(store: str, listed: int) -> None:
            if store not in tasks:
                tasks[store] = progress.add_task(f"store {store}: listing")
            progress.update(tasks[store], description=f"store {store}: {listed:,} objects listed")

        yield update


@app.command()
def init(
    config: ConfigOption = Path("reclaim.toml"),
    as_json: JsonOption = False,
) -> None:
    """Write a commented reclaim.toml (unless it exists) and create or upgrade the catalog."""
    result = _guarded(lambda: api.init(config), as_json=as_json)
    if as_json:
        _emit_json(api.to_jsonable(result))
        return
    if result.config_written:
        out().print(f"wrote {result.config_path}: edit it to describe your databases and stores")
    else:
        out().print(f"{result.config_path} exists; left as it is")
    out().print(f"catalog {result.catalog_url} is at revision {result.catalog_revision}")


@app.command()
def scan(
    config: ConfigOption = Path("reclaim.toml"),
    store: StoreOption = None,
    collection: CollectionOption = None,
    show: Annotated[
        int, typer.Option(min=0, help="Show up to N sample candidates per store and collection.")
    ] = 0,
    fail_on_findings: FailOnFindings = False,
    as_json: JsonOption = False,
) -> None:
    """Read-only: candidates per store (listed, referenced, too young, excluded) and per row collection."""
    with _progress(not as_json) as progress:
        report = _guarded(
            lambda: api.scan(
                _config(config), stores=store, collections=collection, show=show, progress=progress
            ),
            as_json=as_json,
        )
    if as_json:
        _emit_json(report.to_dict())
    else:
        from reclaim.cli.render_rows import render_collection_scans

        render_collection_scans(report.collections, out())
        from reclaim.cli.render import render_scan

        render_scan(report, out())
    if fail_on_findings and report.reported:
        raise typer.Exit(EXIT_FINDINGS)


@app.command()
def check(
    config: ConfigOption = Path("reclaim.toml"),
    store: StoreOption = None,
    show: Annotated[int, typer.Option(min=0, help="Sample dangling references per source.")] = 5,
    fail_on_findings: Annotated[
        bool, typer.Option(help="Exit 5 on any finding (dangling, stray, missing, in flight).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Integrity: dangling references (with sample rows), strays in the trash, journal vs storage."""
    report = _guarded(lambda: api.check(_config(config), stores=store, show=show), as_json=as_json)
    if as_json:
        _emit_json(report.to_dict())
    else:
        from reclaim.cli.render import render_check

        render_check(report, out())
    if fail_on_findings and report.findings:
        raise typer.Exit(EXIT_FINDINGS)


@app.command()
def demo(
    directory: Annotated[Path, typer.Argument(help="Where to build the demo archive.")] = Path(
        "reclaim-demo"
    ),
    as_json: JsonOption = False,
) -> None:
    """Build a sample archive (SQLite + a local directory), scan and check it, run one cycle on it."""
    from reclaim.sample import demo as build_and_run

    result = _guarded(lambda: build_and_run(directory), as_json=as_json)
    if as_json:
        _emit_json(
            {
                "directory": str(result.archive.directory),
                "config": str(result.archive.config_path),
                "scan": result.scan.to_dict(),
                "check": result.check.to_dict(),
                "cycle": result.cycle.to_dict(),
                "next_commands": result.next_commands,
            }
        )
        return
    a = result.archive
    out().print(
        f"[bold]demo archive[/] in {a.directory}: SQLite database + local store with "
        f"{a.live} live objects, {a.orphans} old orphans, {a.young} young orphans, "
        f"{a.excluded} excluded scratch files and {a.dangling} rows pointing at missing blobs; "
        f"{a.old_uploads} upload rows abandoned for more than 7 days.\n"
    )
    from reclaim.cli.render import render_check, render_scan
    from reclaim.cli.render_rows import render_collection_scans, render_cycle

    out().rule("reclaim scan")
    render_collection_scans(result.scan.collections, out())
    render_scan(result.scan, out())
    out().rule("reclaim check")
    render_check(result.check, out())
    out().rule("reclaim run (one cycle: grace is 7 days, so quarantined objects wait in the trash)")
    render_cycle(result.cycle, out())
    out().rule("next")
    for command in result.next_commands:
        out().print(f"  {command}", markup=False, highlight=False)


DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")]


def _lifecycle_output(report: api.LifecycleReport, as_json: bool) -> None:
    if as_json:
        _emit_json(report.to_dict())
    else:
        from reclaim.cli.render_lifecycle import render_lifecycle

        render_lifecycle(report, out())


@app.command()
def quarantine(
    config: ConfigOption = Path("reclaim.toml"),
    store: StoreOption = None,
    dry_run: DryRunOption = False,
    max_fraction: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Override max_fraction for a known backlog (0..1).")
    ] = None,
    show: Annotated[int, typer.Option(min=0, help="Show up to N sample candidates per store.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Phase 1: scan, apply the fail-closed guards, quarantine candidates (move to trash or mark)."""
    with _progress(not as_json) as progress:
        report = _guarded(
            lambda: api.quarantine(
                _config(config),
                stores=store,
                dry_run=dry_run,
                max_fraction=max_fraction,
                show=show,
                progress=progress,
            ),
            as_json=as_json,
        )
    _lifecycle_output(report, as_json)


@app.command()
def purge(
    config: ConfigOption = Path("reclaim.toml"),
    store: StoreOption = None,
    dry_run: DryRunOption = False,
    due_before: Annotated[
        str | None,
        typer.Option(
            "--due-before",
            metavar="TIME",
            help="Purge what is due by TIME (ISO time, or a duration from now: 2d) instead of now.",
        ),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="Purge what was quarantined at least DURATION ago (e.g. 1d), whatever its grace.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Phase 2: re-check quarantined objects past their grace; delete the unreferenced, restore the rest."""
    due = _guarded(lambda: _parse_moment(due_before, "--due-before", 1), as_json=as_json)
    age = _guarded(lambda: _parse_age(older_than), as_json=as_json)
    if (due is not None or age is not None) and not dry_run:
        err().print(
            "[yellow]warning:[/] purging before the grace period ends gives writers less time to "
            "claim reused objects; each object is still re-checked against every reference source"
        )
    report = _guarded(
        lambda: api.purge(_config(config), stores=store, dry_run=dry_run, due_before=due, older_than=age),
        as_json=as_json,
    )
    _lifecycle_output(report, as_json)


def _parse_moment(text: str | None, option: str, sign: int) -> datetime | None:
    """An ISO time, or a duration counted from now (``sign`` 1: ahead, -1: ago)."""
    if text is None:
        return None
    try:
        return datetime.now(UTC) + sign * parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{text!r} is neither a duration (2d) nor an ISO time", field=option) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_age(text: str | None) -> timedelta | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(
            f"{text!r} is not a duration like 90m, 36h, 7d: {exc}", field="--older-than"
        ) from None


@app.command()
def collect(
    config: ConfigOption = Path("reclaim.toml"),
    store: StoreOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Quarantine then purge at once (grace 0): for tests and small setups only."""
    err().print(
        "[yellow]warning:[/] collect purges without a grace period, so writers get no time to claim "
        "reused objects; schedule 'reclaim quarantine' and 'reclaim purge' (or 'reclaim run') instead"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        report = _guarded(
            lambda: api.collect(_config(config), stores=store, dry_run=dry_run), as_json=as_json
        )
    _lifecycle_output(report, as_json)


@app.command()
def run(
    config: ConfigOption = Path("reclaim.toml"),
    dry_run: DryRunOption = False,
    show: Annotated[
        int, typer.Option(min=0, help="Show up to N sample candidates per store and collection.")
    ] = 0,
    fail_on_findings: FailOnFindings = False,
    as_json: JsonOption = False,
) -> None:
    """One scheduled cycle: recover, purge due, collect rows, quarantine objects, expire the archive."""
    with _progress(not as_json) as progress:
        report = _guarded(
            lambda: api.run(_config(config), dry_run=dry_run, show=show, progress=progress), as_json=as_json
        )
    if as_json:
        _emit_json(report.to_dict())
    else:
        from reclaim.cli.render_rows import render_cycle

        render_cycle(report, out())
    if fail_on_findings and report.findings:
        raise typer.Exit(EXIT_FINDINGS)


@app.command()
def restore(
    keys: Annotated[
        list[str] | None, typer.Argument(help="Keys (or, with --collection, primary keys) to restore.")
    ] = None,
    config: ConfigOption = Path("reclaim.toml"),
    store: Annotated[str | None, typer.Option("--store", "-s", help="The store (needed with keys).")] = None,
    run: Annotated[int | None, typer.Option("--run", min=1, help="Everything run ID quarantined.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Quarantined within this long ago (e.g. 2d) or since an ISO time.")
    ] = None,
    match: Annotated[str | None, typer.Option(help="Only keys matching this glob.")] = None,
    purged: Annotated[
        bool,
        typer.Option(
            "--purged", help="Restore purged objects from their noncurrent version (versioned S3 buckets)."
        ),
    ] = False,
    collection: Annotated[
        str | None, typer.Option("--collection", help="Restore archived rows of this collection.")
    ] = None,
    rows: Annotated[
        bool, typer.Option("--rows", help="Restore archived rows (by --run or --since).")
    ] = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Bring quarantined objects back (by key, run, store, time or glob), or archived rows."""
    since_time = _guarded(lambda: _parse_since(since), as_json=as_json) if since else None
    if collection or rows:
        rows_report = _guarded(
            lambda: api.restore_rows(
                _config(config),
                collection=collection,
                pks=keys or (),
                run_id=run,
                since=since_time,
                dry_run=dry_run,
            ),
            as_json=as_json,
        )
        if as_json:
            _emit_json(rows_report.to_dict())
        else:
            from reclaim.cli.render_rows import render_rows_restore

            render_rows_restore(rows_report, out())
        return
    report = _guarded(
        lambda: api.restore(
            _config(config),
            keys=keys or (),
            store=store,
            run_id=run,
            since=since_time,
            match=match,
            dry_run=dry_run,
            purged=purged,
        ),
        as_json=as_json,
    )
    _lifecycle_output(report, as_json)


def _parse_since(text: str) -> datetime:
    moment = _parse_moment(text, "--since", -1)
    assert moment is not None
    return moment


@app.command()
def recover(config: ConfigOption = Path("reclaim.toml"), as_json: JsonOption = False) -> None:
    """Finish or roll back whatever a killed run left in flight."""
    report = _guarded(lambda: api.recover(_config(config)), as_json=as_json)
    if not as_json and not report.recovered and not (report.rows_recovered and report.rows_recovered.total):
        out().print("nothing was in flight")
    _lifecycle_output(report, as_json)


@app.command()
def status(config: ConfigOption = Path("reclaim.toml"), as_json: JsonOption = False) -> None:
    """Quarantined count and bytes, oldest item, next purge, items in flight; the lease; the last runs."""
    report = _guarded(lambda: api.status(_config(config)), as_json=as_json)
    if as_json:
        _emit_json(report.to_dict())
    else:
        from reclaim.cli.render_lifecycle import render_status

        render_status(report, out())
        from reclaim.cli.render_rows import render_collection_status

        render_collection_status(report.collections, out())
        if report.findings:
            out().print(f"[yellow]last cycle: {report.findings:,} report-only findings[/]")


@app.command()
def runs(
    run_id: Annotated[int | None, typer.Argument(min=1, help="Show this run only.")] = None,
    config: ConfigOption = Path("reclaim.toml"),
    limit: Annotated[int, typer.Option(min=1, help="How many recent runs.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The audit log: who ran what, when, with which options, and the counts and bytes per store."""
    records = _guarded(lambda: api.runs(_config(config), run_id=run_id, limit=limit), as_json=as_json)
    if as_json:
        _emit_json(api.to_jsonable(records))
    else:
        from reclaim.cli.render_lifecycle import render_run, render_runs

        if run_id is not None:
            render_run(records[0], out())
        else:
            render_runs(records, out())


@app.command()
def lock(
    config: ConfigOption = Path("reclaim.toml"),
    break_lease: Annotated[bool, typer.Option("--break", help="Break the lease if it is stale.")] = False,
    force: Annotated[bool, typer.Option(help="With --break: break it even if it is live.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show the collector lease; --break clears a stale one (--force: even a live one)."""
    info = _guarded(lambda: api.lock(_config(config), break_lease=break_lease, force=force), as_json=as_json)
    if as_json:
        _emit_json(api.to_jsonable(info))
    else:
        from reclaim.cli.render_lifecycle import render_lease

        render_lease(info, out(), stale=info.stale(datetime.now(UTC)))


def main() -> None:
    """Console entry point."""
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app()
