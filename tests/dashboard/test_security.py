"""No secret on any page, values escaped, a token when asked, read-only, and the last known state."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from config.test_secrets import PLANTED, _world
from reclaim.cli.app import app as cli
from reclaim.dashboard import Dashboard, check_bind, create_app
from reclaim.errors import CatalogError, ConfigError

from .conftest import EVIL_KEY, EVIL_VALUE, Demo, build_demo

TOKEN_VALUE = "Zq9-DASHTOKEN-7731"


def _crawl(client: TestClient, start: list[str], headers: dict[str, str] | None = None) -> dict[str, str]:
    """Every page reachable from ``start`` (and its JSON twin), by path: their bodies."""
    bodies: dict[str, str] = {}
    todo = list(start)
    while todo and len(bodies) < 300:
        path = todo.pop()
        if path in bodies:
            continue
        answer = client.get(path, headers=headers)
        assert answer.status_code in (200, 404), (path, answer.status_code)
        bodies[path] = answer.text
        if "text/html" in answer.headers.get("content-type", ""):
            todo += [link.replace("&amp;", "&") for link in re.findall(r'href="(/[^"#]*)"', answer.text)]
    return bodies


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> None:
    from config.test_secrets import S3_SECRET, SECRET

    monkeypatch.setenv("RECLAIM_PLANTED", SECRET)
    monkeypatch.setenv("RECLAIM_PLANTED_S3", S3_SECRET)
    monkeypatch.setenv("RECLAIM_DASHBOARD_TOKEN", TOKEN_VALUE)


@pytest.mark.usefixtures("planted")
def test_no_page_json_or_metric_shows_a_planted_secret(
    tmp_path: Path, pg_url: str, s3_server: str, s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = _world(tmp_path, pg_url, s3_server, s3_bucket)
    path.write_text(path.read_text() + '\n[dashboard]\ntoken = "${RECLAIM_DASHBOARD_TOKEN}"\n')
    runner = CliRunner()
    for argv in (["init"], ["scan", "--show", "5"], ["check"], ["run"], ["metrics"]):
        result = runner.invoke(cli, [*argv, "--config", str(path)])
        assert result.exit_code in (0, 5), (argv, result.output)
        assert not any(p in result.output for p in PLANTED), argv
    headers = {"Authorization": f"Bearer {TOKEN_VALUE}"}
    with TestClient(create_app(path)) as client:
        bodies = _crawl(
            client, ["/", "/history", "/reconciliation", "/runs", "/quarantine", "/archive"], headers
        )
        for api in ("overview", "history", "reconciliation", "runs", "quarantine?state=", "archive?state="):
            bodies[f"/api/{api}"] = client.get(f"/api/{api}", headers=headers).text
        bodies["/metrics"] = client.get("/metrics", headers=headers).text
    assert len(bodies) > 15
    assert "reclaim_quarantined_objects" in bodies["/metrics"]
    # the store URLs and database names are shown, their credentials never
    assert "s3://" in bodies["/api/reconciliation"] or "s3" in bodies["/"]
    # the catalog unreachable: the error pages name it, with its password masked
    text = path.read_text()
    down = re.sub(
        r'(\[catalog\]\nurl = ")[^"]*"', r'\1postgresql+psycopg://gc:Zq9-DOWN-7731@127.0.0.1:1/x"', text
    )
    assert down != text
    path.write_text(down)
    with TestClient(create_app(path)) as client:
        for page in ("/", "/api/overview", "/runs/1", "/api/quarantine", "/metrics"):
            answer = client.get(page, headers=headers)
            bodies[f"down:{page}"] = answer.text
            assert answer.status_code == (200 if page == "/metrics" else 503), page
    assert "127.0.0.1:1" in bodies["down:/"]
    leaks = {
        p: [line for line in b.splitlines() if "Zq9" in line][:3] for p, b in bodies.items() if "Zq9" in b
    }
    assert leaks == {}
    assert not any("Zq9" in r.getMessage() for r in caplog.records if r.name.startswith("reclaim"))


def test_keys_and_row_values_are_shown_as_text(demo: Demo, client: TestClient) -> None:
    entries = client.get("/api/quarantine", params={"key": "evil/*"}).json()["entries"]
    assert [e["key"] for e in entries] == [EVIL_KEY]
    rows = client.get("/api/archive", params={"pk": "99"}).json()["rows"]
    pages = [
        client.get("/quarantine", params={"key": "evil/*"}).text,
        client.get(f"/quarantine/{entries[0]['id']}").text,
        client.get(f"/archive/{rows[0]['id']}").text,
        client.get("/quarantine", params={"key": "<script>"}).text,  # echoed in the search box
        client.get("/reconciliation").text,  # the scan's samples
    ]
    for page in pages:
        assert "<script>" not in page
    assert "evil/&lt;script&gt;alert(&#39;key&#39;)&lt;/script&gt;" in pages[1]
    assert "&lt;script&gt;alert(&#39;row&#39;)&lt;/script&gt;" in pages[2]
    assert "evil/&lt;script&gt;" in pages[4]
    assert EVIL_VALUE in client.get(f"/api/archive/{rows[0]['id']}").json()["row"]["data"].values()


def test_with_a_token_every_request_needs_it(
    demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "reclaim.toml"
    monkeypatch.setenv("RECLAIM_DASHBOARD_TOKEN", "s3cret-token-42")
    config.write_text(demo.config.read_text() + '\n[dashboard]\ntoken = "${RECLAIM_DASHBOARD_TOKEN}"\n')
    shutil.copy(demo.directory / "reclaim-catalog.sqlite", tmp_path / "reclaim-catalog.sqlite")
    basic = base64.b64encode(b"admin:s3cret-token-42").decode()
    with TestClient(create_app(config)) as client:
        for path in ("/", "/api/overview", "/metrics", "/runs/1", "/static/style.css"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"Authorization": "Bearer nope-nope"}).status_code == 401
            assert client.get(path, headers={"Authorization": "Basic !!!"}).status_code == 401
            assert client.get(path, headers={"Authorization": "Bearer s3cret-token-42"}).status_code == 200
            assert client.get(path, headers={"Authorization": f"Basic {basic}"}).status_code == 200
        assert client.get("/").headers["www-authenticate"] == 'Basic realm="reclaim"'
        assert client.get("/healthz").status_code == 200  # for the load balancer; it shows nothing


def test_without_a_token_only_loopback_is_served_unless_public(demo: Demo) -> None:
    for host in ("127.0.0.1", "::1", "localhost"):
        check_bind(host, token=None, public=False)
    check_bind("0.0.0.0", token="a-token-value", public=False)  # noqa: S104
    check_bind("0.0.0.0", token=None, public=True)  # noqa: S104
    with pytest.raises(ConfigError, match="without authentication"):
        check_bind("0.0.0.0", token=None, public=False)  # noqa: S104
    done = subprocess.run(
        [sys.executable, "-m", "reclaim", "serve", "--config", str(demo.config), "--host", "0.0.0.0"],  # noqa: S104
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--public" in done.stderr


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_dashboard_never_writes_the_catalog(demo: Demo, client: TestClient) -> None:
    catalog = demo.directory / "reclaim-catalog.sqlite"
    before = (_digest(catalog), catalog.stat().st_mtime_ns)
    _crawl(client, ["/", "/history", "/reconciliation", "/runs", "/quarantine?state=", "/archive?state="])
    client.get("/metrics")
    assert (_digest(catalog), catalog.stat().st_mtime_ns) == before
    # and it could not if it tried: its connections are read-only
    board = Dashboard(demo.config)
    try:
        with pytest.raises(CatalogError, match="readonly"), board.catalog().begin() as connection:
            connection.execute(board.catalog().tables.runs.delete())
    finally:
        board.close()
    assert _digest(catalog) == before[0]


def test_a_postgresql_catalog_is_opened_read_only(tmp_path: Path, pg_url: str) -> None:
    config = tmp_path / "reclaim.toml"
    config.write_text(f'[catalog]\nurl = "{pg_url}"\n')
    result = CliRunner().invoke(cli, ["init", "--config", str(config)])
    assert result.exit_code == 0, result.output
    board = Dashboard(config)
    try:
        with (
            pytest.raises(CatalogError, match="read-only transaction"),
            board.catalog().begin() as connection,
        ):
            connection.execute(board.catalog().tables.runs.delete())
        assert board.overview()["status"]["runs"] == []
    finally:
        board.close()


def test_a_missing_catalog_is_reported_and_never_created(tmp_path: Path) -> None:
    config = tmp_path / "reclaim.toml"
    config.write_text(f'[catalog]\nurl = "sqlite:///{tmp_path / "nothing.sqlite"}"\n')
    with TestClient(create_app(config)) as client:
        answer = client.get("/")
        assert answer.status_code == 503
        assert "does not exist" in answer.text
        assert client.get("/api/runs").status_code == 503
        assert client.get("/metrics").text.count("reclaim_catalog_up 0.0") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reclaim.toml"]


def test_an_unreachable_catalog_shows_the_last_known_state_and_the_error(tmp_path: Path) -> None:
    demo = build_demo(tmp_path / "demo")
    catalog = demo.directory / "reclaim-catalog.sqlite"
    with TestClient(create_app(demo.config)) as client:
        first = client.get("/api/overview").json()
        assert first["error"] is None
        catalog.rename(catalog.with_suffix(".away"))
        gone = client.get("/api/overview").json()
        assert gone["status"] == first["status"]
        assert gone["read_at"] == first["read_at"]
        assert "does not exist" in gone["error"]
        page = client.get("/").text
        assert "The catalog cannot be read" in page
        assert 'data-field="quarantined">' in page  # the figures are still there
        assert client.get("/metrics").text.count("reclaim_catalog_up 0.0") == 1
        catalog.with_suffix(".away").rename(catalog)
        assert client.get("/api/overview").json()["error"] is None


def test_without_the_extra_serve_and_metrics_say_which_extra_to_install(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m.startswith("reclaim.dashboard")]:
        monkeypatch.delitem(sys.modules, name)
    for name in ["starlette", *[m for m in sys.modules if m.startswith("starlette.")]]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    runner = CliRunner()
    for argv in (["serve"], ["metrics"]):
        result = runner.invoke(cli, [*argv, "--config", str(demo.config)])
        assert result.exit_code == 2, result.output
        assert "pip install 'reclaim[dashboard]'" in result.output
    assert runner.invoke(cli, ["status", "--config", str(demo.config)]).exit_code == 0
