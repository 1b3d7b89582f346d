"""End to end in a real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium).

``reclaim serve`` runs as a real process; the browser follows the links an
admin would, and the numbers it reads must be those of ``reclaim status
--json``, ``reclaim runs --json`` and ``reclaim check --json``; the charts must
have the points the audit log gives. Two archives: the demo, and the DANDI
example after ten nightly cycles (PostgreSQL, a versioned bucket). Screenshots go to the
test's directory, or to ``$RECLAIM_SCREENSHOTS`` when set.

Without Chromium the tests skip (``apt-get install -y chromium
chromium-driver``); in CI, which installs them, they fail instead.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import pytest

import reclaim

from .conftest import EVIL_KEY, Demo, Server, cli_json, start_server, stop_server

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing: pip install -e '.[dev]'")
from selenium.webdriver.common.by import By  # noqa: E402

from examples.test_dandi import CONFIG as DANDI_CONFIG  # noqa: E402
from examples.test_dandi import OBJECTS, THROUGH_THE_STORE  # noqa: E402
from examples.test_dandi import archive as archive  # noqa: E402 (the example built on PostgreSQL and S3: a fixture)


def _screenshot(driver: Any, directory: Path, name: str) -> Path:
    """A full-page screenshot (the window grown to the page's height)."""
    target = Path(os.environ.get("RECLAIM_SCREENSHOTS", directory))
    target.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(700, int(height) + 10))
    path = target / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)
    return path


def _nav(driver: Any, name: str) -> None:
    driver.find_element(By.LINK_TEXT, name).click()
    assert driver.title.startswith(name if name != "Overview" else "Overview")
    assert driver.find_elements(By.CSS_SELECTOR, ".banner.error") == []


def _text(driver: Any, selector: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, selector).text)


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _check_overview(driver: Any, status: dict[str, Any]) -> None:
    for store in status["stores"]:
        card = driver.find_element(By.CSS_SELECTOR, f'section.store[data-store="{store["store"]}"]')
        shown = card.find_element(By.CSS_SELECTOR, '[data-field="quarantined"]').text
        assert _number(shown) == store["summary"]["quarantined"]
        size = card.find_element(By.CSS_SELECTOR, '[data-field="quarantined_bytes"]')
        assert int(size.get_attribute("data-bytes")) == store["summary"]["quarantined_bytes"]
    for collection in status["collections"]:
        name = collection["collection"]
        row = driver.find_element(By.CSS_SELECTOR, f'#collections tr[data-collection="{name}"]')
        assert (
            _number(row.find_element(By.CSS_SELECTOR, '[data-field="archived"]').text)
            == (collection["summary"]["archived"])
        )
    shown_runs = _run_ids(driver, "table.runs tr[data-run]")
    assert shown_runs[: len(status["runs"])] == [r["id"] for r in status["runs"]]


def _run_ids(driver: Any, selector: str = "tr[data-run]") -> list[int]:
    return [int(r.get_attribute("data-run")) for r in driver.find_elements(By.CSS_SELECTOR, selector)]


def _point(mark: Any) -> tuple[str, float]:
    return str(mark.get_attribute("data-label")), float(mark.get_attribute("data-value"))


def _history_points(driver: Any) -> dict[str, list[tuple[str, float]]]:
    points: dict[str, list[tuple[str, float]]] = {}
    for bar in driver.find_elements(By.CSS_SELECTOR, "#chart-purged rect.bar"):
        points.setdefault("purged", []).append(_point(bar))
    for circle in driver.find_elements(By.CSS_SELECTOR, "circle.point"):
        series = circle.get_attribute("data-series")
        points.setdefault(series, []).append(_point(circle))
    return points


def test_the_demo_in_a_real_browser(browser: Any, demo: Demo, tmp_path: Path) -> None:
    server = start_server(demo.config)
    try:
        _walk_demo(browser, server, demo, tmp_path)
    finally:
        stop_server(server)


def _walk_demo(driver: Any, server: Server, demo: Demo, shots: Path) -> None:
    status = cli_json("status", "--config", str(demo.config))
    driver.get(server.url + "/")
    assert driver.find_element(By.ID, "health").get_attribute("data-red") == "false"
    _check_overview(driver, status)
    _screenshot(driver, shots, "demo-overview")

    # the last run, from the overview's table, to its page
    last = status["runs"][0]
    driver.find_element(By.CSS_SELECTOR, f'tr[data-run="{last["id"]}"] a').click()
    assert _text(driver, "h1").startswith(f"Run {last['id']}: {last['command']}")
    (record,) = cli_json("runs", str(last["id"]), "--config", str(demo.config))
    quarantined = record["counts"]["quarantined"]["main"]["quarantined"]["count"]
    assert _number(_text(driver, 'tr[data-store="main"] [data-field="quarantined"]')) == quarantined

    _nav(driver, "Reconciliation")
    check = cli_json("check", "--config", str(demo.config))
    assert _number(_text(driver, "#dangling-total")) == check["dangling"]
    _screenshot(driver, shots, "demo-reconciliation")

    _nav(driver, "Quarantine")
    rows = driver.find_elements(By.CSS_SELECTOR, "table.entries tr[data-entry]")
    assert len(rows) == status["stores"][0]["summary"]["quarantined"]
    key_box = driver.find_element(By.NAME, "key")
    key_box.send_keys("evil/*")
    key_box.submit()
    (only,) = driver.find_elements(By.CSS_SELECTOR, "table.entries tr[data-entry]")
    only.find_element(By.CSS_SELECTOR, "td.key a").click()
    assert _text(driver, "#key") == EVIL_KEY  # shown as text, not run as a script
    assert shlex.split(_text(driver, "#restore-command"))[-1] == EVIL_KEY
    assert driver.execute_script("return document.querySelectorAll('main script').length") == 0
    _screenshot(driver, shots, "demo-entry")

    _nav(driver, "Archive")
    first = driver.find_element(By.CSS_SELECTOR, "table.rows tr[data-row] td.key a")
    first.click()
    assert "reclaim restore" in _text(driver, "#restore-command")

    _nav(driver, "History")
    points = _history_points(driver)
    assert len(points["purged"]) == 30
    assert len(points["quarantined"]) == 30
    assert points["quarantined"][-1][1] == status["stores"][0]["summary"]["quarantined_bytes"]
    assert len(points["main"]) == 2  # the scan and the cycle
    _screenshot(driver, shots, "demo-history")

    _nav(driver, "Runs")
    assert _run_ids(driver) == [r["id"] for r in cli_json("runs", "--config", str(demo.config))]
    _nav(driver, "Overview")


# -- the DANDI example after ten nightly cycles ------------------------------------------


#: the nights the DANDI example runs for the dashboard: the first week, and the week its first purges fall in
DANDI_NIGHTS = [*range(5), *range(30, 35)]


@pytest.fixture
def dandi(request: pytest.FixtureRequest) -> Path:
    """The DANDI example (PostgreSQL, a versioned bucket) after its cycles of :data:`DANDI_NIGHTS`."""
    archive = request.getfixturevalue("archive")
    night = 0
    for cycle in DANDI_NIGHTS:
        archive.travel(cycle - night)
        night = cycle
        reclaim.run(archive.config, show=5)
    reclaim.check(archive.config)
    return Path(DANDI_CONFIG)


def test_the_dandi_example_after_ten_cycles(browser: Any, dandi: Path, tmp_path: Path) -> None:
    status = cli_json("status", "--config", str(dandi))
    runs = cli_json("runs", "--config", str(dandi), "--limit", "50")
    assert len(runs) == len(DANDI_NIGHTS)
    server = start_server(dandi)
    try:
        driver = browser
        driver.get(server.url + "/")
        _check_overview(driver, status)
        assert _number(_text(driver, "#findings")) == status["findings"] > 0  # zarr archives, report only
        _screenshot(driver, tmp_path, "dandi-overview")

        _nav(driver, "History")
        points = _history_points(driver)
        purged_by_day: dict[str, float] = {}
        for record in runs:
            day = record["started_at"][:10]
            # purged by a purge, and with their rows at the rows' expiry (objects = "follow")
            results = [
                *record["counts"].get("purged", {}).values(),
                *record["counts"].get("expired", {}).get("objects", {}).values(),
            ]
            for result in results:
                purged_by_day[day] = purged_by_day.get(day, 0) + result["purged"]["bytes"]
        drawn = {label: value for label, value in points["purged"] if value}
        assert drawn == {day: value for day, value in purged_by_day.items() if value}
        # the nights the example's table of outcomes purges an object on
        fates = (OBJECTS | THROUGH_THE_STORE).values()
        assert len(drawn) == len({n for n in DANDI_NIGHTS if any(f.expires == n for f in fates)}) == 2
        # one listing per cycle of the chart's 30 days (the default window)
        assert len(points["bucket"]) == len([n for n in DANDI_NIGHTS if n > DANDI_NIGHTS[-1] - 30])
        _screenshot(driver, tmp_path, "dandi-history")

        _nav(driver, "Runs")
        shown = _run_ids(driver)
        assert shown == [r["id"] for r in runs]
        driver.get(server.url + "/runs?limit=5")
        paged: list[int] = []
        while True:
            paged += _run_ids(driver)
            older = driver.find_elements(By.ID, "older")
            if not older:
                break
            older[0].click()
        assert paged == [r["id"] for r in runs]

        _nav(driver, "Quarantine")
        state = driver.find_element(By.NAME, "state")
        state.find_element(By.CSS_SELECTOR, 'option[value="purged"]').click()
        state.submit()
        purged = driver.find_elements(By.CSS_SELECTOR, "table.entries tr[data-entry]")
        assert len(purged) == sum(s["summary"]["purged"] for s in status["stores"])
        purged[0].find_element(By.CSS_SELECTOR, "td.key a").click()
        history = driver.find_elements(By.CSS_SELECTOR, "tr[data-entry]")
        assert history
        assert driver.find_elements(By.ID, "restore-command") == []  # purged: nothing to restore

        _nav(driver, "Reconciliation")
        _screenshot(driver, tmp_path, "dandi-reconciliation")
        _nav(driver, "Archive")
        assert driver.find_elements(By.CSS_SELECTOR, "table.rows tr[data-row]")
        _screenshot(driver, tmp_path, "dandi-archive")
    finally:
        stop_server(server)
