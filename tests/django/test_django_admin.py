"""The admin pages through Django's test client: the overview, the quarantine, the row archive, restore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django_fixtures import Project

from reclaim import api


@pytest.fixture
def admin_client(fresh: Project) -> object:
    from django.contrib.auth.models import User
    from django.test import Client

    User.objects.filter(username="alice").delete()
    alice = User.objects.create_superuser("alice", "alice@example.org", "pw")
    client = Client()
    client.force_login(alice)
    return client


def _quarantined(fresh: Project) -> set[str]:
    from reclaim.django.conf import reclaim_config
    from reclaim.lifecycle import open_journal

    with open_journal(reclaim_config()) as (_s, _c, journal):
        return {e.key for e in journal.select(store="default")}


def test_restore_from_the_quarantine_page_asks_first_and_logs_the_admin(
    fresh: Project, admin_client: object
) -> None:
    from django.contrib.admin.models import LogEntry

    from reclaim.django.conf import reclaim_config

    client = admin_client
    s3 = fresh.s3()
    for key in ("blobs/keep-me.dat", "blobs/other.dat"):
        s3.put_object(Bucket=fresh.bucket, Key=f"media/{key}", Body=b"o")  # type: ignore[attr-defined]
    api.run(reclaim_config())
    assert _quarantined(fresh) == {"blobs/keep-me.dat", "blobs/other.dat"}

    page = client.get("/admin/reclaim/quarantine/", {"q": "keep"})  # type: ignore[attr-defined]
    assert page.status_code == 200
    assert b"blobs/keep-me.dat" in page.content
    assert b"blobs/other.dat" not in page.content

    selected = {"selected": ["default:blobs/keep-me.dat"], "action": "restore"}
    confirm = client.post("/admin/reclaim/quarantine/", selected)  # type: ignore[attr-defined]
    assert confirm.status_code == 200
    assert b"Yes, restore them" in confirm.content
    assert _quarantined(fresh) == {"blobs/keep-me.dat", "blobs/other.dat"}  # nothing yet

    done = client.post("/admin/reclaim/quarantine/", {**selected, "confirm": "yes"})  # type: ignore[attr-defined]
    assert done.status_code == 302
    assert _quarantined(fresh) == {"blobs/other.dat"}
    entry = LogEntry.objects.get()
    assert entry.user.username == "alice"
    assert "blobs/keep-me.dat" in entry.change_message
    run = api.runs(reclaim_config(), limit=1)[0]
    assert run.command == "restore"
    assert run.user == "alice"  # the admin, not the OS user the server runs as
    assert entry.object_id == str(run.id)


def test_restore_from_the_row_archive_and_the_overview(fresh: Project, admin_client: object) -> None:
    from archive.models import Upload
    from django.contrib.admin.models import LogEntry

    from reclaim.django.conf import reclaim_config

    client = admin_client
    stale = Upload.objects.create(finished=False, created=datetime.now(UTC) - timedelta(days=3))
    api.run(reclaim_config())
    assert not Upload.objects.filter(pk=stale.pk).exists()

    overview = client.get("/admin/reclaim/")  # type: ignore[attr-defined]
    assert overview.status_code == 200
    assert b'<td class="archived">1</td>' in overview.content

    page = client.get("/admin/reclaim/archive/", {"collection": "uploads"})  # type: ignore[attr-defined]
    assert page.status_code == 200
    pk = f'["{stale.pk}"]'
    assert pk.encode() in page.content.replace(b"&quot;", b'"')

    selected = {"selected": [f"uploads:{pk}"], "action": "restore"}
    confirm = client.post("/admin/reclaim/archive/", selected)  # type: ignore[attr-defined]
    assert b"Yes, restore them" in confirm.content
    assert not Upload.objects.filter(pk=stale.pk).exists()
    done = client.post("/admin/reclaim/archive/", {**selected, "confirm": "yes"})  # type: ignore[attr-defined]
    assert done.status_code == 302
    assert Upload.objects.filter(pk=stale.pk).exists()
    assert LogEntry.objects.get().user.username == "alice"


def test_the_pages_need_a_staff_user_and_restore_a_superuser(fresh: Project) -> None:
    from django.contrib.auth.models import User
    from django.test import Client

    anonymous = Client().get("/admin/reclaim/quarantine/")
    assert anonymous.status_code == 302  # to the admin login
    User.objects.filter(username="bob").delete()
    bob = User.objects.create_user("bob", password="pw", is_staff=True)
    client = Client()
    client.force_login(bob)
    assert client.get("/admin/reclaim/quarantine/").status_code == 200
    refused = client.post("/admin/reclaim/quarantine/", {"selected": ["default:x"], "confirm": "yes"})
    assert refused.status_code == 403


def test_the_quarantine_and_archive_pages_search_in_sql_and_page(
    fresh: Project, admin_client: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from archive.models import Upload

    from reclaim.django import admin_views
    from reclaim.django.conf import reclaim_config

    client = admin_client
    s3 = fresh.s3()
    keys = ("blobs/a-1.dat", "blobs/b-2.dat", "blobs/c-3.dat", "other/d-4.dat")
    for key in keys:
        s3.put_object(Bucket=fresh.bucket, Key=f"media/{key}", Body=b"o")  # type: ignore[attr-defined]
    stale = [
        Upload.objects.create(finished=False, created=datetime.now(UTC) - timedelta(days=3)) for _ in range(3)
    ]
    api.run(reclaim_config())
    monkeypatch.setattr(admin_views, "PAGE", 2)

    def listed(content: bytes) -> set[str]:
        return {key for key in keys if key.encode() in content}

    first = client.get("/admin/reclaim/quarantine/", {"q": "blobs/*"})  # type: ignore[attr-defined]
    assert len(listed(first.content)) == 2
    assert b"older entries" in first.content
    link = (
        first.content.split(b'class="paginator"><a href="?', 1)[1]
        .split(b'"', 1)[0]
        .decode()
        .replace("&amp;", "&")
    )
    second = client.get(f"/admin/reclaim/quarantine/?{link}")  # type: ignore[attr-defined]
    assert listed(first.content) | listed(second.content) == {
        "blobs/a-1.dat",
        "blobs/b-2.dat",
        "blobs/c-3.dat",
    }
    assert listed(first.content).isdisjoint(listed(second.content))
    assert b"older entries" not in second.content

    contains = client.get("/admin/reclaim/quarantine/", {"q": "d-4"})  # type: ignore[attr-defined]
    assert listed(contains.content) == {"other/d-4.dat"}
    assert b"older entries" not in contains.content

    wanted = f'["{stale[1].pk}"]'
    rows = client.get("/admin/reclaim/archive/", {"q": wanted})  # type: ignore[attr-defined]
    shown = rows.content.replace(b"&quot;", b'"')
    assert wanted.encode() in shown
    assert all(f'["{row.pk}"]'.encode() not in shown for row in (stale[0], stale[2]))
