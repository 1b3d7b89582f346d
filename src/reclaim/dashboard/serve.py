"""Serving the dashboard with uvicorn, and the bind rule: no token, no public address."""

from __future__ import annotations

import ipaddress
import socket

from reclaim.api import ConfigLike, resolve_config
from reclaim.errors import ConfigError

__all__ = ["check_bind", "serve"]


def _loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_bind(host: str, *, token: str | None, public: bool) -> None:
    """Refuse (:class:`~reclaim.errors.ConfigError`) to bind beyond loopback without a token or ``public``.

    Without ``[dashboard] token`` anyone who reaches the port sees the
    archive's keys and row values; binding elsewhere than loopback needs an
    explicit ``--public`` (e.g. behind a reverse proxy that authenticates).
    """
    if token or public or _loopback(host):
        return
    raise ConfigError(
        f"refusing to serve the dashboard on {host} without authentication: set [dashboard] token "
        '(e.g. token = "${RECLAIM_DASHBOARD_TOKEN}"), or pass --public if something in front of it '
        "authenticates",
        field="dashboard.token",
    )


def serve(
    config: ConfigLike,
    *,
    host: str = "127.0.0.1",
    port: int = 8750,
    public: bool = False,
    prefix: str | None = None,
) -> None:
    """Serve the dashboard of ``config`` until interrupted; :class:`ConfigError` per :func:`check_bind`."""
    import uvicorn

    from reclaim.dashboard.app import create_app

    resolved = resolve_config(config)
    check_bind(host, token=resolved.dashboard.token, public=public)
    app = create_app(resolved, prefix=prefix)
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=True, server_header=False)
