"""Shared fixtures: real databases (SQLite, PostgreSQL, MariaDB) and a real S3 server.

PostgreSQL and MariaDB are expected on 127.0.0.1 (see the README). Outside CI a
test that needs an absent server is skipped with a message that says how to
provide it; in CI (``CI=true``) an absent server is an error.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("RECLAIM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_ADMIN_URL = os.environ.get("RECLAIM_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")

HOW_TO = {
    "postgresql": (
        "PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres, trust auth, database test); "
        "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
        "or point RECLAIM_TEST_PG at a server"
    ),
    "mysql": (
        "MariaDB/MySQL is not reachable at 127.0.0.1:3306 (user root, empty password, database test); "
        "start it with `start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd` "
        "or point RECLAIM_TEST_MYSQL at a server"
    ),
}


def _reachable(url: str) -> bool:
    parsed = sa.make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 0), timeout=2):
            return True
    except OSError:
        return False


def require_server(dialect: str) -> None:
    """Skip (outside CI) or fail (in CI) when the server for ``dialect`` is down."""
    url = PG_ADMIN_URL if dialect == "postgresql" else MYSQL_ADMIN_URL
    if not _reachable(url):
        if os.environ.get("CI"):
            pytest.fail(HOW_TO[dialect])
        pytest.skip(HOW_TO[dialect])


def _fresh_database(dialect: str) -> Iterator[str]:
    """Create a database of its own for one test, drop it afterwards, yield its URL."""
    require_server(dialect)
    name = f"reclaim_t_{secrets.token_hex(5)}"
    admin_url = PG_ADMIN_URL if dialect == "postgresql" else MYSQL_ADMIN_URL
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            if dialect == "postgresql":
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database."""
    yield from _fresh_database("postgresql")


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """URL of a fresh, empty MariaDB/MySQL database."""
    yield from _fresh_database("mysql")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'app.sqlite'}"


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each dialect in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.sqlite'}"
    else:
        yield from _fresh_database(request.param)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """An S3-compatible server (moto's server mode) on 127.0.0.1; yields its endpoint URL."""
    server_mod = pytest.importorskip(
        "moto.server", reason="moto[server] is not installed: pip install -e '.[dev]'"
    )
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    port = _free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    """A fresh, empty bucket on the test S3 server; yields its name."""
    import boto3

    name = f"reclaim-{secrets.token_hex(4)}"
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_options(s3_server: str) -> dict[str, object]:
    """fsspec storage options that reach the test S3 server."""
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": s3_server, "region_name": "us-east-1"},
    }


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's headless Chromium driven by Selenium; skipped without it, failed in CI (which installs it)."""
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is missing: pip install -e '.[dev]'"
    )
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = (
            f"headless Chromium is not installed ({CHROMIUM}, {CHROMEDRIVER}): "
            "apt-get install -y chromium chromium-driver"
        )
        if os.environ.get("CI"):
            pytest.fail(message + " (CI installs them in .ci/run)")
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,900")
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
