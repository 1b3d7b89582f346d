"""The ASGI application: pages, their JSON API, ``/metrics``, authentication and escaping.

Every page has its JSON twin under ``/api/`` (the same data the page is
rendered from). Everything that leaves the application goes through
:func:`~reclaim.config.redact` once more, after rendering: a secret the
configuration names can appear in no page, JSON document or metric even if
some report carried it. Templates escape every value (Jinja2 autoescape);
charts escape their labels themselves.

With ``[dashboard] token`` set, every request but ``/healthz`` must carry it,
as ``Authorization: Bearer TOKEN`` or as the password of HTTP basic auth (any
user name); it is compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Final

from jinja2 import ChainableUndefined, Environment, PackageLoader, Undefined, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from reclaim.api import ConfigLike
from reclaim.config import redact
from reclaim.dashboard import charts
from reclaim.dashboard.data import Dashboard, LastKnown, PageError
from reclaim.dashboard.metrics import registry_for, render_metrics
from reclaim.errors import ReclaimError

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"
#: seconds the start waits for the catalog to open before serving anyway (see :func:`_start`)
STARTUP_WAIT: Final = 2.0


def human_size(value: Any) -> str:
    """1536 -> ``1.5 KiB``."""
    if isinstance(value, Undefined):
        return "-"
    try:
        size = float(value or 0)
    except (TypeError, ValueError):
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(size) < 1024 or unit == "PiB":
            return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return "?"  # pragma: no cover


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def when(value: Any) -> str:
    """An ISO time as ``2026-12-03 16:41 UTC``; ``-`` for none."""
    moment = _moment(value)
    return "-" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _rough(seconds: float) -> str:
    """A duration for people, in its two largest units: ``6d 23h``, ``3h 5m``, ``42s``."""
    whole = int(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size or (unit == "s" and not parts):
            parts.append(f"{whole // size}{unit}")
            whole %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def ago(value: Any) -> str:
    """An ISO time as ``3h 5m ago`` / ``in 6d 23h``; ``-`` for none."""
    moment = _moment(value)
    if moment is None:
        return "-"
    seconds = (datetime.now(UTC) - moment).total_seconds()
    return f"{_rough(seconds)} ago" if seconds >= 0 else f"in {_rough(-seconds)}"


def number(value: Any) -> str:
    """12345 -> ``12,345``."""
    if isinstance(value, Undefined):
        return "-"
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "-" if value is None else str(value)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reclaim.dashboard", "templates"),
        autoescape=select_autoescape(["html"]),
        # a run's counts come from the audit log of any version: a missing figure shows as "-"
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(size=human_size, when=when, ago=ago, number=number)
    return env


class _Auth:
    """Refuse requests without the configured token (bearer, or basic-auth password)."""

    def __init__(self, app: ASGIApp, token: str | None, open_paths: tuple[str, ...]) -> None:
        self.app = app
        self.token = token.encode("utf-8") if token else None
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers", [])).get(b"authorization", b"")
        if not self._valid(header):
            response = PlainTextResponse(
                "authentication required",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="reclaim"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _valid(self, header: bytes) -> bool:
        assert self.token is not None
        scheme, _, value = header.partition(b" ")
        given = b""
        if scheme.lower() == b"bearer":
            given = value.strip()
        elif scheme.lower() == b"basic":
            try:
                given = base64.b64decode(value.strip(), validate=True).partition(b":")[2]
            except (binascii.Error, ValueError):
                return False
        return bool(given) and hmac.compare_digest(given, self.token)


def create_app(config: ConfigLike, *, prefix: str | None = None) -> Starlette:
    """The dashboard of ``config`` as an ASGI application (``prefix``: override ``[dashboard] prefix``)."""
    dashboard = Dashboard(config)
    settings = dashboard.config.dashboard
    base = (settings.prefix if prefix is None else prefix).rstrip("/")
    env = _environment()
    registry = registry_for(dashboard)

    def html(request: Request, template: str, page: str, read: Callable[[], dict[str, Any]]) -> Response:
        try:
            known: LastKnown | None = dashboard.last_known(page, read)
        except PageError as exc:
            return _error_page(exc.status_code, str(exc))
        except ReclaimError as exc:
            return _error_page(503, str(exc))
        assert known is not None
        context = {
            "base": base,
            "page": page,
            "data": known.data,
            "error": known.error,
            "read_at": known.read_at.isoformat(),
            "config_path": dashboard.config_path,
            "query": dict(request.query_params),
            "charts": charts,
            "markup": Markup,
            "size_fmt": human_size,
            "count_fmt": number,
        }
        text = env.get_template(template).render(**context)
        return HTMLResponse(redact(text), status_code=200)

    def _error_page(status_code: int, message: str) -> Response:
        text = env.get_template("error.html").render(
            base=base,
            page="error",
            status_code=status_code,
            message=message,
            config_path=dashboard.config_path,
        )
        return HTMLResponse(redact(text), status_code=status_code)

    def api(page: str, read: Callable[[], dict[str, Any]]) -> Response:
        try:
            known = dashboard.last_known(page, read)
        except PageError as exc:
            return _json({"error": str(exc)}, exc.status_code)
        except ReclaimError as exc:
            return _json({"error": str(exc)}, 503)
        body = dict(known.data)
        body["read_at"] = known.read_at.isoformat()
        body["error"] = known.error
        return _json(body, 200)

    # -- pages and their JSON ---------------------------------------------------------

    def overview(request: Request) -> Response:
        return html(request, "overview.html", "overview", dashboard.overview)

    def overview_json(request: Request) -> Response:
        return api("overview", dashboard.overview)

    def history(request: Request) -> Response:
        days = _int(request, "days", 30) or 30
        return html(request, "history.html", f"history:{days}", lambda: dashboard.history(days))

    def history_json(request: Request) -> Response:
        days = _int(request, "days", 30) or 30
        return api(f"history:{days}", lambda: dashboard.history(days))

    def reconciliation(request: Request) -> Response:
        return html(request, "reconciliation.html", "reconciliation", dashboard.reconciliation)

    def reconciliation_json(request: Request) -> Response:
        return api("reconciliation", dashboard.reconciliation)

    def _runs(request: Request) -> Callable[[], dict[str, Any]]:
        q = request.query_params
        before = _int(request, "before", None)
        limit = min(max(_int(request, "limit", 20) or 20, 1), 200)
        return lambda: dashboard.runs_page(
            before=before, command=q.get("command") or None, status_=q.get("status") or None, limit=limit
        )

    def runs_page(request: Request) -> Response:
        return html(request, "runs.html", f"runs:{request.url.query}", _runs(request))

    def runs_json(request: Request) -> Response:
        return api(f"runs:{request.url.query}", _runs(request))

    def run_page(request: Request) -> Response:
        run_id = int(request.path_params["run_id"])
        return html(request, "run.html", f"run:{run_id}", lambda: dashboard.run(run_id))

    def run_json(request: Request) -> Response:
        run_id = int(request.path_params["run_id"])
        return api(f"run:{run_id}", lambda: dashboard.run(run_id))

    def _quarantine(request: Request) -> Callable[[], dict[str, Any]]:
        q = request.query_params
        state = q.get("state", "quarantined")
        return lambda: dashboard.quarantine_page(
            store=q.get("store") or None,
            state=state or None,
            key=q.get("key") or None,
            run_id=_int(request, "run", None),
            since=q.get("since") or None,
            until=q.get("until") or None,
            before=_int(request, "before", None),
            limit=min(max(_int(request, "limit", 50) or 50, 1), 200),
        )

    def quarantine(request: Request) -> Response:
        return html(request, "quarantine.html", f"quarantine:{request.url.query}", _quarantine(request))

    def quarantine_json(request: Request) -> Response:
        return api(f"quarantine:{request.url.query}", _quarantine(request))

    def entry_page(request: Request) -> Response:
        entry_id = int(request.path_params["entry_id"])
        return html(request, "entry.html", f"entry:{entry_id}", lambda: dashboard.entry(entry_id))

    def entry_json(request: Request) -> Response:
        entry_id = int(request.path_params["entry_id"])
        return api(f"entry:{entry_id}", lambda: dashboard.entry(entry_id))

    def _archive(request: Request) -> Callable[[], dict[str, Any]]:
        q = request.query_params
        state = q.get("state", "archived")
        return lambda: dashboard.archive_page(
            collection=q.get("collection") or None,
            state=state or None,
            pk=q.get("pk") or None,
            run_id=_int(request, "run", None),
            since=q.get("since") or None,
            until=q.get("until") or None,
            before=_int(request, "before", None),
            limit=min(max(_int(request, "limit", 50) or 50, 1), 200),
        )

    def archive(request: Request) -> Response:
        return html(request, "archive.html", f"archive:{request.url.query}", _archive(request))

    def archive_json(request: Request) -> Response:
        return api(f"archive:{request.url.query}", _archive(request))

    def row_page(request: Request) -> Response:
        row_id = int(request.path_params["row_id"])
        return html(request, "row.html", f"row:{row_id}", lambda: dashboard.archived(row_id))

    def row_json(request: Request) -> Response:
        row_id = int(request.path_params["row_id"])
        return api(f"row:{row_id}", lambda: dashboard.archived(row_id))

    def metrics(request: Request) -> Response:
        return Response(redact(render_metrics(registry).decode("utf-8")), media_type=_CONTENT_TYPE_METRICS)

    def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    routes: list[BaseRoute] = [
        Route("/", overview),
        Route("/api/overview", overview_json),
        Route("/history", history),
        Route("/api/history", history_json),
        Route("/reconciliation", reconciliation),
        Route("/api/reconciliation", reconciliation_json),
        Route("/runs", runs_page),
        Route("/api/runs", runs_json),
        Route("/runs/{run_id:int}", run_page),
        Route("/api/runs/{run_id:int}", run_json),
        Route("/quarantine", quarantine),
        Route("/api/quarantine", quarantine_json),
        Route("/quarantine/{entry_id:int}", entry_page),
        Route("/api/quarantine/{entry_id:int}", entry_json),
        Route("/archive", archive),
        Route("/api/archive", archive_json),
        Route("/archive/{row_id:int}", row_page),
        Route("/api/archive/{row_id:int}", row_json),
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(packages=[("reclaim.dashboard", "static")]), name="static"),
    ]
    if base:
        routes = [Route(base, lambda request: RedirectResponse(f"{base}/")), Mount(base, routes=routes)]
    middleware = [Middleware(_Auth, token=settings.token, open_paths=(f"{base}/healthz",))]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(_start, dashboard, env)
        yield
        dashboard.close()

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.dashboard = dashboard
    return app


def _start(dashboard: Dashboard, env: Environment) -> None:
    """What the first request would otherwise pay: the templates' compilation and the catalog's opening.

    Compiling every template takes tens of milliseconds and needs nothing
    but the package. The catalog (connection, revision check, one read of the
    overview that compiles its statements: :meth:`Dashboard.open_early`) is
    opened in a thread of its own, waited for at most :data:`STARTUP_WAIT` seconds: a
    catalog server that does not answer delays the start by that much only, and
    an unreachable or missing catalog is only logged here; the pages show the
    error (and the last state they read) as before.
    """
    started = time.perf_counter()
    for name in env.list_templates(filter_func=lambda name: name.endswith(".html")):
        env.get_template(name)
    compiled = time.perf_counter()
    errors: list[str] = []
    opening = threading.Thread(
        target=lambda: errors.append(dashboard.open_early() or ""), name="reclaim-dashboard-open", daemon=True
    )
    opening.start()
    opening.join(STARTUP_WAIT)
    opened = time.perf_counter()
    level, outcome = logging.INFO, f"opened and read in {(opened - compiled) * 1000:.0f} ms"
    if opening.is_alive():
        level, outcome = logging.WARNING, f"still opening after {STARTUP_WAIT:.0f} s"
    elif errors and errors[0]:
        level, outcome = logging.WARNING, f"not opened ({errors[0]}); the pages will try again"
    log.log(
        level,
        "dashboard started in %.0f ms: templates compiled in %.0f ms, catalog %s",
        (opened - started) * 1000,
        (compiled - started) * 1000,
        outcome,
    )


def _int(request: Request, name: str, default: int | None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        return default


def _json(body: dict[str, Any], status_code: int) -> Response:
    text = json.dumps(body, indent=1, default=str, allow_nan=False)
    return Response(redact(text), status_code=status_code, media_type="application/json")
