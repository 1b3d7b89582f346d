"""``reclaim serve`` and ``reclaim metrics``: a read-only web dashboard and Prometheus metrics.

Installed with the ``dashboard`` extra (``pip install 'reclaim[dashboard]'``:
Starlette, Jinja2, uvicorn, prometheus_client); nothing else in reclaim
imports it. Everything it shows comes from the catalog, opened read-only
(:mod:`reclaim.dashboard.readonly`), through :mod:`reclaim.api` and the paged
queries of :mod:`reclaim.catalog.browse`; it never lists a store, never
reads an application database and never takes the lease.

    app = create_app("reclaim.toml")             # an ASGI application
    serve("reclaim.toml", host="127.0.0.1", port=8750)
    write_textfile(Dashboard("reclaim.toml"), "/var/lib/node_exporter/reclaim.prom")
"""

from reclaim.dashboard.app import create_app
from reclaim.dashboard.data import Dashboard
from reclaim.dashboard.metrics import write_textfile
from reclaim.dashboard.serve import check_bind, serve

__all__ = ["Dashboard", "check_bind", "create_app", "serve", "write_textfile"]
