"""Every page and its JSON: the figures are those of ``reclaim status --json`` and ``reclaim runs --json``."""

from __future__ import annotations

import re
import shlex
from collections import Counter
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import reclaim.api as api
from reclaim.dashboard import create_app

from .conftest import EVIL_KEY, Demo, build_demo, cli_json

PAGES = ["/", "/history", "/reconciliation", "/runs", "/quarantine", "/archive"]


def test_the_overview_shows_what_reclaim_status_json_gives(demo: Demo, client: TestClient) -> None:
    expected = cli_json("status", "--config", str(demo.config))
    body = client.get("/api/overview").json()
    # the JSON embeds the very report; the CLI lists 5 runs by default, the overview 10
    got = body["status"]
    assert {k: v for k, v in got.items() if k != "runs"} == {k: v for k, v in expected.items() if k != "runs"}
    assert got["runs"][: len(expected["runs"])] == expected["runs"]
    assert body["error"] is None
    assert body["health"]["red"] is False

    page = client.get("/").text
    (store,) = expected["stores"]
    summary = store["summary"]
    assert f'data-field="quarantined">{summary["quarantined"]:,}<' in page
    assert f'data-bytes="{summary["quarantined_bytes"]}"' in page
    (collection,) = expected["collections"]
    assert f'data-field="archived">{collection["summary"]["archived"]:,}<' in page
    # the last cycle's listing, recorded by the cycle itself
    cycle = body["cycle"]
    assert cycle["run_id"] == expected["runs"][0]["id"]
    listed = next(s for s in cycle["stores"] if s["store"] == "main")
    count = listed["listed"]["count"]
    assert f'data-part="listed"><td>listed</td><td class="num" data-count="{count}"' in page
    assert listed["candidates"]["count"] == summary["quarantined"]


def test_the_runs_pages_show_what_reclaim_runs_json_gives(demo: Demo, client: TestClient) -> None:
    expected = cli_json("runs", "--config", str(demo.config))
    assert client.get("/api/runs").json()["runs"] == expected
    for record in expected:
        one = cli_json("runs", str(record["id"]), "--config", str(demo.config))
        detail = client.get(f"/api/runs/{record['id']}").json()
        assert [detail["run"]] == one
        page = client.get(f"/runs/{record['id']}").text
        assert f"Run {record['id']}: {record['command']}" in page
        quarantined = record["counts"]["quarantined"]["main"]["quarantined"]["count"]
        assert f'data-field="quarantined">{quarantined:,}<' in page
    assert client.get("/runs/999").status_code == 404
    assert client.get("/api/runs/999").json() == {"error": "run 999 does not exist"}


def test_every_page_loads_and_every_link_leads_somewhere(client: TestClient) -> None:
    seen: set[str] = set()
    todo = list(PAGES)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        answer = client.get(path)
        assert answer.status_code == 200, path
        if "text/html" not in answer.headers["content-type"]:
            continue
        for link in re.findall(r'href="([^"#]+)"', answer.text):
            link = link.replace("&amp;", "&")
            if link.startswith("/") and len(seen) < 200:
                todo.append(link)
    assert {"/runs/1", "/quarantine/1", "/archive/1", "/metrics", "/static/style.css"} <= seen
    assert any(p.startswith("/api/") for p in seen)


def test_the_quarantine_browser_pages_through_every_entry_once(demo: Demo, client: TestClient) -> None:
    status = api.status(demo.config)
    total = status.stores[0].summary.quarantined
    seen: list[int] = []
    before = None
    while True:
        query = "limit=5" + (f"&before={before}" if before else "")
        body = client.get(f"/api/quarantine?{query}").json()
        seen += [e["id"] for e in body["entries"]]
        before = body["next_before"]
        if before is None:
            break
    assert len(seen) == total == len(set(seen))
    assert seen == sorted(seen, reverse=True)

    by_glob = client.get("/api/quarantine", params={"key": "zarr/*", "limit": 200}).json()["entries"]
    assert by_glob
    assert all(e["key"].startswith("zarr/") for e in by_glob)
    exact = client.get("/api/quarantine", params={"key": "ZARR/*"}).json()["entries"]
    assert exact == []  # keys are matched byte for byte: ZARR is not zarr
    by_run = client.get("/api/quarantine", params={"run": 1, "limit": 200}).json()["entries"]
    assert len(by_run) == total
    assert client.get("/api/quarantine", params={"run": 2}).json()["entries"] == []
    assert client.get("/api/quarantine", params={"since": "2999-01-01"}).json()["entries"] == []
    assert client.get("/api/quarantine?state=bogus").status_code == 400


def test_an_entry_shows_its_history_and_the_exact_restore_command(demo: Demo, client: TestClient) -> None:
    (entry,) = client.get("/api/quarantine", params={"key": "evil/*"}).json()["entries"]
    assert entry["key"] == EVIL_KEY
    detail = client.get(f"/api/quarantine/{entry['id']}").json()
    assert [h["id"] for h in detail["history"]] == [entry["id"]]
    command = detail["entry"]["restore"]
    expected = ["reclaim", "restore", "--config", str(demo.config), "--store", "main", "--", EVIL_KEY]
    assert shlex.split(command) == expected
    # the command does what it says (a dry run: this archive stays as the other tests expect it)
    argv = shlex.split(command)
    dry = cli_json(*argv[1 : argv.index("--")], "--dry-run", "--", argv[-1])
    assert dry["restored"]["main"]["restored"] == 1


def test_the_archive_browser_and_a_row(demo: Demo, client: TestClient) -> None:
    rows = client.get("/api/archive").json()["rows"]
    status = api.status(demo.config)
    assert len(rows) == status.collections[0].summary.archived
    evil = next(r for r in rows if r["pk"] == '["99"]')
    detail = client.get(f"/api/archive/{evil['id']}").json()
    assert detail["row"]["data"]["id"] == 99
    assert shlex.split(detail["row"]["restore"])[-3:] == ["uploads", "--", '["99"]']
    assert [r["pk"] for r in client.get("/api/archive", params={"pk": "9?"}).json()["rows"]] == ['["99"]']
    assert client.get("/api/archive", params={"pk": "8?"}).json()["rows"] == []
    assert client.get("/api/archive/12345").status_code == 404


def test_history_charts_have_one_point_per_day(demo: Demo, client: TestClient) -> None:
    body = client.get("/api/history?days=7").json()
    assert len(body["days"]) == len(body["purged_total"]) == len(body["quarantined_bytes"]) == 7
    status = api.status(demo.config)
    assert body["quarantined_bytes"][-1] == status.stores[0].summary.quarantined_bytes
    assert body["candidates"]["series"]["main"]  # the scan and the cycle
    page = client.get("/history?days=7").text
    assert page.count('class="bar"') == 7
    points = Counter(re.findall(r'<circle class="point"[^>]*data-series="([^"]+)"', page))
    assert points["quarantined"] == 7
    assert points["main"] == len(body["candidates"]["at"])


def test_reconciliation_has_both_directions(demo: Demo, client: TestClient) -> None:
    body = client.get("/api/reconciliation").json()
    check = cli_json("check", "--config", str(demo.config))
    assert body["dangling_total"] == check["dangling"] > 0
    samples = [s["key"] for d in body["dangling"] for s in d["samples"]]
    expected = [s["key"] for st in check["stores"] for src in st["sources"] for s in src["samples"]]
    assert samples == expected
    page = client.get("/reconciliation").text
    assert f'id="dangling-total">{check["dangling"]}<' in page
    # the cycle recorded no samples: those of the newest scan that did are shown, with their time
    (main,) = body["unreferenced"]
    assert EVIL_KEY in [sample["key"] for sample in main["samples"]]
    assert main["samples_at"] != body["scan"]["at"]
    assert "samples from the scan of" in page


def test_under_a_path_prefix_every_link_keeps_it(demo: Demo) -> None:
    with TestClient(create_app(demo.config, prefix="/tools/reclaim")) as client:
        assert client.get("/tools/reclaim", follow_redirects=False).status_code in (302, 307)
        page = client.get("/tools/reclaim/").text
        links = re.findall(r'(?:href|src)="(/[^"]*)"', page)
        assert links
        assert all(link.startswith("/tools/reclaim/") for link in links)
        assert client.get("/tools/reclaim/static/style.css").status_code == 200
        assert client.get("/").status_code == 404


def test_the_demo_ends_with_the_serve_command(tmp_path: Path) -> None:
    out = cli_json("demo", str(tmp_path / "demo"))
    assert out["serve"] == f"reclaim serve --config {tmp_path / 'demo' / 'reclaim.toml'}"


@pytest.mark.parametrize("path", PAGES)
def test_pages_answer_json_twins(client: TestClient, path: str) -> None:
    twin = "/api/overview" if path == "/" else f"/api{path}"
    answer = client.get(twin)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"] is None


def test_the_overview_shows_the_run_in_progress_from_the_lease(demo: Demo, client: TestClient) -> None:
    from reclaim.catalog import Leases, open_catalog
    from reclaim.config import load_config

    catalog = open_catalog(load_config(demo.config).catalog)
    leases = Leases(catalog)
    lease = leases.acquire("nightly", run_id=None)
    try:
        lease.report_progress({"phase": "quarantine", "store": "main", "objects_done": 12_345})
        leases.heartbeat(lease)
        body = client.get("/api/overview").json()
        assert body["progress"] == {"phase": "quarantine", "store": "main", "objects_done": 12_345}
        assert body["status"]["lease"]["holder"] == "nightly"
        page = client.get("/").text
        assert "Run in progress" in page
        assert "12,345" in page
        assert "nightly@" in page
    finally:
        leases.release(lease)
        catalog.dispose()
    assert client.get("/api/overview").json()["progress"] is None


def test_purged_and_restored_in_30_days_are_what_the_runs_did(tmp_path: Path) -> None:
    demo = build_demo(tmp_path / "demo")
    with TestClient(create_app(demo.config)) as client:
        restored = api.restore(demo.config, match="zarr/*")
        with pytest.warns(DeprecationWarning, match="without a grace period"):
            collected = api.collect(demo.config)
        body = client.get("/api/overview").json()
        history = client.get("/api/history?days=30").json()
        page = client.get("/").text
    recent = body["recent"]["stores"]["main"]
    purged = {
        "count": sum(p.purged.count for p in collected.purged),
        "bytes": sum(p.purged.bytes for p in collected.purged),
    }
    assert recent["purged"] == purged
    assert purged["count"] > 0
    assert recent["restored"] == {
        "count": restored.restored["main"].restored,
        "bytes": restored.restored["main"].restored_bytes,
    }
    assert recent["restored"]["count"] > 0
    # the 30 days of the history chart's bars
    assert sum(history["purged_bytes"]["main"]) == purged["bytes"]
    assert f'data-field="purged_30d">{purged["count"]:,}<' in page
