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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from reclaim import api
from reclaim.cli.logs import LogFormat, configure_logging
from reclaim.cli.progress import ProgressSettings, reporting
from reclaim.config import Config, parse_duration, redact
from reclaim.errors import ConfigError, ReclaimError
from reclaim.lifecycle.progress import Reporter

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["EXIT_FINDINGS", "app", "main", "preset_config", "run_cycle"]

EXIT_FINDINGS = 5

log = logging.getLogger(__name__)

#: set by the global options; read by the commands that show progress
_progress_settings = ProgressSettings()
#: whether ``--json`` is anywhere on the command line (errors of the global options are JSON then)
_json_requested = False


class _Commands(TyperGroup):
    """The command group: with ``--json`` anywhere in argv, usage errors are JSON on stdout too."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        global _json_requested
        argv = list(sys.argv[1:] if args is None else args)
        _json_requested = "--json" in argv
        if not (_json_requested and standalone_mode):
            return super().main(argv, prog_name, complete_var, standalone_mode, windows_expand_args, **extra)
        try:
            code = super().main(argv, prog_name, complete_var, False, windows_expand_args, **extra)
        except Exception as exc:
            if _is_a(exc, "Abort"):
                sys.stderr.write("Aborted!\n")
                sys.exit(1)
            if not _is_a(exc, "ClickException"):
                raise
            _usage_error(exc)
        sys.exit(code if isinstance(code, int) else 0)


def _is_a(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is a Click ``name`` (by class name: Typer 0.29 bundles its own copy of Click)."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _show_usage_error(exc: Any) -> None:
    """On stderr, as Typer shows it without ``--json`` (in a box where Typer draws one)."""
    try:
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
    except (ImportError, AttributeError):
        exc.show()


def _usage_error(exc: Any) -> NoReturn:
    """Click's message on stderr as always, and the JSON error document on stdout; exit as Click does.

    The document is the one every error has under ``--json``: ``type``
    (``UsageError`` for a bad option, value or command), ``message``,
    ``exit_code`` (2 for usage errors) and, where Click says which, the
    option as ``field``.
    """
    _show_usage_error(exc)
    code = int(getattr(exc, "exit_code", 2))
    document: dict[str, Any] = {
        "type": "UsageError" if _is_a(exc, "UsageError") else type(exc).__name__,
        "message": redact(str(exc.format_message())),
        "exit_code": code,
    }
    param = getattr(exc, "param", None)
    names = [*getattr(param, "opts", ()), getattr(param, "name", None), getattr(exc, "option_name", None)]
    field = next((name for name in names if isinstance(name, str) and name), None)
    if field is not None:
        document["field"] = redact(field)
    _emit_json({"error": document})
    sys.exit(code)


app = typer.Typer(
    name="reclaim",
    cls=_Commands,
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
    no_progress: Annotated[
        bool,
        typer.Option(
            "--no-progress",
            envvar="RECLAIM_NO_PROGRESS",
            help="No progress bars (terminal) or progress log lines (cron, systemd).",
        ),
    ] = False,
    progress_interval: Annotated[
        str,
        typer.Option(
            "--progress-interval",
            metavar="DURATION",
            envvar="RECLAIM_PROGRESS_INTERVAL",
            help="Off a terminal, log a running step's progress every DURATION (0: every update).",
        ),
    ] = "30s",
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print reclaim's version and exit."
        ),
    ] = False,
) -> None:
    """Logging goes to stderr at WARNING unless -v, --log-file or RECLAIM_LOG_LEVEL say otherwise.

    Long steps show progress on stderr: a bar per step on a terminal, a log
    line every --progress-interval elsewhere; --no-progress turns it off.
    """
    _guarded(lambda: configure_logging(verbose, log_format, log_file), as_json=_json_requested)
    interval = _guarded(lambda: _parse_interval(progress_interval), as_json=_json_requested)
    _progress_settings.enabled = not no_progress
    _progress_settings.interval = interval


def _parse_interval(text: str) -> float:
    try:
        return parse_duration(text).total_seconds()
    except ValueError as exc:
        raise ConfigError(str(exc), field="--progress-interval") from None


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
def _progress() -> Iterator[Reporter | None]:
    """Progress of the command's long steps on stderr (see :mod:`reclaim.cli.progress`)."""
    with reporting(_progress_settings, err()) as reporter:
        yield reporter


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
    referenced_bytes: Annotated[
        bool,
        typer.Option(
            "--referenced-bytes",
            help="Also measure the bytes of referenced objects where the listing has no sizes "
            "(a local directory: one stat per object).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Read-only: candidates per store (listed, referenced, too young, excluded) and per row collection."""
    with _progress() as progress:
        report = _guarded(
            lambda: api.scan(
                _config(config),
                stores=store,
                collections=collection,
                show=show,
                progress=progress,
                referenced_bytes=referenced_bytes,
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
    with _progress() as progress:
        report = _guarded(
            lambda: api.check(_config(config), stores=store, show=show, progress=progress), as_json=as_json
        )
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
                "serve": _serve_command(result.archive.config_path),
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
    out().print(f"  {_serve_command(a.config_path)}", markup=False, highlight=False)
    out().print("    (the dashboard, on http://127.0.0.1:8750/; needs the 'dashboard' extra)", style="dim")


def _serve_command(config_path: Path) -> str:
    return f"reclaim serve --config {config_path}"


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
    with _progress() as progress:
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
    with _progress() as progress:
        report = _guarded(
            lambda: api.purge(
                _config(config),
                stores=store,
                dry_run=dry_run,
                due_before=due,
                older_than=age,
                progress=progress,
            ),
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
        with _progress() as progress:
            report = _guarded(
                lambda: api.collect(_config(config), stores=store, dry_run=dry_run, progress=progress),
                as_json=as_json,
            )
    _lifecycle_output(report, as_json)


@app.command()
def run(
    config: ConfigOption = Path("reclaim.toml"),
    dry_run: DryRunOption = False,
    show: Annotated[
        int, typer.Option(min=0, help="Show up to N sample candidates per store and collection.")
    ] = 0,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental",
            help="Look only at the keys the queue triggers recorded, not the whole store "
            "(needs 'reclaim incremental install' and a full scan within full_scan_every).",
        ),
    ] = False,
    fail_on_findings: FailOnFindings = False,
    as_json: JsonOption = False,
    workers: Annotated[
        str | None,
        typer.Option(
            "--workers",
            help="Work each store's key ranges on an engine's workers: 'celery' (the distributed extra).",
        ),
    ] = None,
    partitions: Annotated[
        int, typer.Option("--partitions", min=1, help="With --workers: key ranges per store.")
    ] = 4,
    split: Annotated[
        list[str] | None,
        typer.Option(
            "--split", help="With --workers: a split point of every store's key space (repeatable)."
        ),
    ] = None,
) -> None:
    """One scheduled cycle: recover, purge due, collect rows, quarantine objects, expire the archive."""
    if workers is not None:
        if incremental:
            raise typer.BadParameter("--incremental reads the queue on one machine; leave out --workers")
        from reclaim.cli.distributed_cli import distributed_run

        distributed_run(
            config,
            workers=workers,
            partitions=partitions,
            splits=split,
            timeout=None,
            dry_run=dry_run,
            show=show,
            fail_on_findings=fail_on_findings,
            as_json=as_json,
        )
        return
    run_cycle(
        config,
        dry_run=dry_run,
        show=show,
        incremental=incremental,
        fail_on_findings=fail_on_findings,
        as_json=as_json,
    )


def run_cycle(
    config: Path, *, dry_run: bool, show: int, incremental: bool, fail_on_findings: bool, as_json: bool
) -> None:
    """``reclaim run`` (and ``reclaim incremental run``): the cycle, its output and exit code."""
    with _progress() as progress:
        report = _guarded(
            lambda: api.run(
                _config(config), dry_run=dry_run, show=show, incremental=incremental, progress=progress
            ),
            as_json=as_json,
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
        with _progress() as progress:
            rows_report = _guarded(
                lambda: api.restore_rows(
                    _config(config),
                    collection=collection,
                    pks=keys or (),
                    run_id=run,
                    since=since_time,
                    dry_run=dry_run,
                    progress=progress,
                ),
                as_json=as_json,
            )
        if as_json:
            _emit_json(rows_report.to_dict())
        else:
            from reclaim.cli.render_rows import render_rows_restore

            render_rows_restore(rows_report, out())
        return
    with _progress() as progress:
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
                progress=progress,
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


# -- the dashboard (the 'dashboard' extra, imported only by these two commands) -----------

#: the packages of the 'dashboard' extra
_DASHBOARD_PACKAGES = ("starlette", "jinja2", "uvicorn", "prometheus_client", "markupsafe")


def _dashboard() -> Any:
    """``reclaim.dashboard``, or a :class:`ConfigError` naming the extra to install."""
    try:
        import reclaim.dashboard as dashboard
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in _DASHBOARD_PACKAGES:
            raise
        raise ConfigError(
            f"the dashboard needs the 'dashboard' extra ({exc.name} is not installed): "
            "pip install 'reclaim[dashboard]'"
        ) from None
    return dashboard


@app.command()
def serve(
    config: ConfigOption = Path("reclaim.toml"),
    host: Annotated[str, typer.Option(help="Address to listen on (loopback unless --public).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8750,
    public: Annotated[
        bool,
        typer.Option(help="Allow a non-loopback address without [dashboard] token (a proxy authenticates)."),
    ] = False,
    prefix: Annotated[
        str | None, typer.Option(help="Path prefix behind a reverse proxy (overrides [dashboard] prefix).")
    ] = None,
) -> None:
    """A read-only web dashboard and JSON API over the catalog, with Prometheus metrics at /metrics."""

    def work() -> None:
        dashboard = _dashboard()
        resolved = api.resolve_config(config)
        dashboard.check_bind(host, token=resolved.dashboard.token, public=public)
        shown_prefix = (prefix if prefix is not None else resolved.dashboard.prefix).rstrip("/")
        err().print(
            f"serving the dashboard on http://{host}:{port}{shown_prefix}/ (Ctrl-C stops)", markup=False
        )
        dashboard.serve(resolved, host=host, port=port, public=public, prefix=prefix)

    _guarded(work)


@app.command()
def metrics(
    config: ConfigOption = Path("reclaim.toml"),
    textfile: Annotated[
        Path | None, typer.Option(help="Write them here, atomically (node_exporter's textfile collector).")
    ] = None,
) -> None:
    """Prometheus metrics from the catalog: on stdout, or into --textfile for node_exporter."""

    def work() -> None:
        dashboard = _dashboard()
        board = dashboard.Dashboard(config)
        try:
            if textfile is not None:
                dashboard.write_textfile(board, textfile)
            else:
                from reclaim.dashboard.metrics import registry_for, render_metrics

                board.metrics()  # the catalog's own error, not a page of catalog_up 0
                sys.stdout.write(redact(render_metrics(registry_for(board)).decode("utf-8")))
        finally:
            board.close()

    _guarded(work)


def main() -> None:
    """Console entry point."""
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app()


from reclaim.cli.datajoint_cli import datajoint_app  # noqa: E402  (needs the helpers above)

app.add_typer(datajoint_app, name="datajoint")

from reclaim.cli.distributed_cli import distributed_app  # noqa: E402  (needs the helpers above)

app.add_typer(distributed_app, name="distributed")

from reclaim.cli.incremental_cli import incremental_app  # noqa: E402  (needs the helpers above)

app.add_typer(incremental_app, name="incremental")
