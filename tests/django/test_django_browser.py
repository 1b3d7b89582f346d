"""The admin's restore, end to end in Debian's headless Chromium against ``manage.py runserver``.

An admin logs in through Django's own login form, searches the quarantine,
ticks an object, confirms, and the object is restored (the store quarantines
in ``mark`` mode: the journal says so, the bytes never left); reclaim's run
record and Django's admin log both name the admin.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django_fixtures import PROJECT, Project

from reclaim import api

By = pytest.importorskip(
    "selenium.webdriver.common.by", reason="selenium is missing: pip install -e '.[dev]'"
).By
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def site(fresh: Project) -> Iterator[str]:
    """``manage.py runserver`` as a process of its own, serving the project's admin."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=PROJECT,
        env=fresh.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    pytest.fail(f"runserver did not start: {server.communicate()[1]}")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.communicate(timeout=30)


def _wait_for(browser: Any, selector: str) -> Any:
    """The element, once the page that has it has loaded (a form's submit returns before the next page)."""
    from selenium.webdriver.support import expected_conditions

    return WebDriverWait(browser, 60).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector))
    )


def _quarantined() -> set[str]:
    from reclaim.catalog.journal import State
    from reclaim.django.conf import reclaim_config
    from reclaim.lifecycle import open_journal

    with open_journal(reclaim_config()) as (_s, _c, journal):
        return {e.key for e in journal.select(store="default", states=(State.QUARANTINED,))}


def test_an_admin_restores_a_quarantined_object_in_the_browser(
    fresh: Project, site: str, browser: Any
) -> None:
    from django.contrib.admin.models import LogEntry
    from django.contrib.auth.models import User

    from reclaim.django.conf import reclaim_config

    User.objects.filter(username="carol").delete()
    User.objects.create_superuser("carol", "carol@example.org", "a-long-test-password")
    s3 = fresh.s3()
    for key, body in (("blobs/wanted.dat", b"the bytes carol needs"), ("blobs/unwanted.dat", b"x")):
        s3.put_object(Bucket=fresh.bucket, Key=f"media/{key}", Body=body)  # type: ignore[attr-defined]
    api.run(reclaim_config())
    assert _quarantined() == {"blobs/wanted.dat", "blobs/unwanted.dat"}

    browser.get(f"{site}/admin/reclaim/quarantine/")
    assert "/admin/login/" in browser.current_url  # staff only
    browser.find_element(By.NAME, "username").send_keys("carol")
    browser.find_element(By.NAME, "password").send_keys("a-long-test-password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    _wait_for(browser, "#changelist-search")
    assert browser.current_url.endswith("/admin/reclaim/quarantine/")

    search = browser.find_element(By.NAME, "q")
    search.send_keys("wanted")
    browser.find_element(By.CSS_SELECTOR, "#changelist-search input[type=submit]").click()
    WebDriverWait(browser, 60).until(lambda driver: "q=wanted" in driver.current_url)
    _wait_for(browser, "input[value='default:blobs/wanted.dat']")
    keys = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#result_list td.key")]
    assert sorted(keys) == ["blobs/unwanted.dat", "blobs/wanted.dat"]  # "wanted" is in both
    browser.find_element(By.CSS_SELECTOR, "input[value='default:blobs/wanted.dat']").click()
    browser.find_element(By.CSS_SELECTOR, "button[value=restore]").click()

    _wait_for(browser, "ul.restore-list")
    listed = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "ul.restore-list li")]
    assert listed == ["blobs/wanted.dat"]
    assert _quarantined() == {
        "blobs/wanted.dat",
        "blobs/unwanted.dat",
    }  # the confirmation page changes nothing
    browser.find_element(By.CSS_SELECTOR, "input[value='Yes, restore them']").click()

    message = _wait_for(browser, "ul.messagelist").text
    assert "1 object(s) restored" in message
    assert _quarantined() == {"blobs/unwanted.dat"}
    assert fresh.s3_objects()["blobs/wanted.dat"] == b"the bytes carol needs"
    remaining = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#result_list td.key")]
    assert remaining == ["blobs/unwanted.dat"]
    run = api.runs(reclaim_config(), limit=1)[0]
    assert (run.command, run.user) == ("restore", "carol")
    entry = LogEntry.objects.get()
    assert entry.user.username == "carol"
    assert entry.object_id == str(run.id)
