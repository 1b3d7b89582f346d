"""The configuration built from the settings and models, and a cycle run with it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django_fixtures import Project

from reclaim import api, parse_config
from reclaim.errors import ConfigError


def _populate() -> dict[str, set[str]]:
    """Rows with files, and orphans beside them; returns the orphans per store."""
    from archive.models import Asset, AssetBlob, Note, Upload
    from django.core.files.base import ContentFile
    from django.core.files.storage import storages

    for i in range(3):
        blob = AssetBlob.objects.create(blob=ContentFile(f"blob {i}".encode(), name=f"b{i}.dat"))
        Asset.objects.create(path=f"a{i}", blob=blob)
    Upload.objects.create(blob=ContentFile(b"upload", name="u.dat"), finished=True, created=datetime.now(UTC))
    Note.objects.create(attachment=ContentFile(b"note", name="n.txt"))
    Note.objects.create()  # a note without a file: blank, never a reference
    return {
        "default": {
            storages["default"].save(f"blobs/orphan{i}.dat", ContentFile(b"x" * i)) for i in range(2)
        },
        "local": {storages["local"].save("notes/orphan.txt", ContentFile(b"lost"))},
    }


def _referenced() -> dict[str, set[str]]:
    """What the rows reference, computed with the ORM alone."""
    from archive.models import AssetBlob, Note, Upload

    default = {b.blob.name for b in AssetBlob.objects.all()} | {
        u.blob.name for u in Upload.objects.all() if u.blob
    }
    local = {n.attachment.name for n in Note.objects.all() if n.attachment}
    return {"default": default, "local": local}


def test_stores_and_sources_come_from_storages_and_file_fields(fresh: Project) -> None:
    from reclaim.django.conf import reclaim_config

    config = reclaim_config()
    assert config.stores["default"].url == f"s3://{fresh.bucket}/media/"
    assert config.stores["default"].storage_options["client_kwargs"]["endpoint_url"] == fresh.endpoint
    assert config.stores["local"].url == fresh.media.resolve().as_uri()
    sources = {name: {(r.table, r.column) for r in s.references} for name, s in config.stores.items()}
    assert sources == {
        "default": {("archive_assetblob", "blob"), ("archive_upload", "blob")},
        "local": {("archive_note", "attachment")},
    }
    assert set(config.databases) == {"default"}
    assert "pg-password-only-in-settings" not in repr(config)


def test_a_cycle_keeps_every_referenced_file_and_quarantines_exactly_the_orphans(fresh: Project) -> None:
    from reclaim.django.conf import reclaim_config

    orphans = _populate()
    referenced = _referenced()
    s3_before, local_before = fresh.s3_objects(), fresh.local_files()
    assert set(s3_before) == referenced["default"] | orphans["default"]

    report = api.run(reclaim_config())

    status = api.status(reclaim_config())
    counts = {s.store: s.summary.quarantined for s in status.stores}
    assert counts == {"default": len(orphans["default"]), "local": len(orphans["local"])}
    from reclaim.lifecycle import open_journal

    with open_journal(reclaim_config()) as (_s, _c, journal):
        keys = {store: {e.key for e in journal.select(store=store)} for store in ("default", "local")}
    assert keys == orphans, report.to_dict()
    # every referenced file is still there, byte for byte (S3 is in mark mode; local files moved to _trash/)
    s3_after, local_after = fresh.s3_objects(), fresh.local_files()
    assert {k: s3_after[k] for k in referenced["default"]} == {k: s3_before[k] for k in referenced["default"]}
    assert {k: local_after[k] for k in referenced["local"]} == {
        k: local_before[k] for k in referenced["local"]
    }
    assert "notes/orphan.txt" not in local_after
    assert "_trash/notes/orphan.txt" in local_after


def test_row_collection_lookups_are_compiled_by_the_orm(fresh: Project) -> None:
    from archive.models import Upload

    from reclaim.django.conf import reclaim_config

    old = datetime.now(UTC) - timedelta(days=3)
    stale = Upload.objects.create(finished=False, created=old)
    done = Upload.objects.create(finished=True, created=old)
    young = Upload.objects.create(finished=False, created=datetime.now(UTC))
    config = reclaim_config()
    collection = config.collections["uploads"]
    assert collection.table == "archive_upload"
    assert collection.age_column == "created"
    assert "finished" in (collection.where or "")

    api.run(config)

    assert set(Upload.objects.values_list("pk", flat=True)) == {done.pk, young.pk}
    report = api.restore_rows(config, collection="uploads", pks=[str(stale.pk)])
    assert report.result.total == 1
    assert Upload.objects.filter(pk=stale.pk).exists()


def test_a_model_added_later_is_picked_up_without_configuration(fresh: Project) -> None:
    from django.apps import apps
    from django.db import connection, models

    from reclaim.django.conf import reclaim_config

    class Thumbnail(models.Model):
        image = models.ImageField(upload_to="thumbs/")

        class Meta:
            app_label = "archive"

    try:
        with connection.schema_editor() as editor:
            editor.create_model(Thumbnail)
        sources = {r.name for r in reclaim_config().stores["default"].references}
        assert "archive.Thumbnail.image" in sources
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(Thumbnail)
        del apps.all_models["archive"]["thumbnail"]
        apps.clear_cache()


def test_a_file_field_whose_storage_cannot_be_mapped_is_an_error_naming_it(fresh: Project) -> None:
    from django.apps import apps
    from django.core.files.storage import Storage
    from django.db import models

    from reclaim.django.conf import reclaim_config

    class Elsewhere(Storage):
        pass

    class Scan(models.Model):
        page = models.FileField(storage=Elsewhere())

        class Meta:
            app_label = "archive"

    try:
        with pytest.raises(ConfigError, match=r"archive\.Scan field 'page'.*Elsewhere"):
            reclaim_config()
    finally:
        del apps.all_models["archive"]["scan"]
        apps.clear_cache()


def test_config_prints_an_equivalent_toml_without_credentials(fresh: Project) -> None:
    from reclaim.django.conf import config_toml, reclaim_config

    text = config_toml()
    assert "pg-password-only-in-settings" not in text
    assert "s3-secret-only-in-settings" not in text
    assert "${RECLAIM_DEFAULT_PASSWORD}" in text
    env = {
        "RECLAIM_DEFAULT_PASSWORD": "pg-password-only-in-settings",
        "RECLAIM_DEFAULT_KEY": "AKIDDJANGOTEST",
        "RECLAIM_DEFAULT_SECRET": "s3-secret-only-in-settings",
    }
    os.environ.update(env)
    try:
        reparsed = parse_config(text)
    finally:
        for name in env:
            os.environ.pop(name)
    built = reclaim_config()
    assert reparsed.model_dump() == built.model_dump()
    assert reparsed.stores["default"].storage_options == built.stores["default"].storage_options


def test_ensure_brings_back_a_quarantined_file_a_new_row_reuses(fresh: Project) -> None:
    from archive.models import AssetBlob
    from django.core.files.base import ContentFile
    from django.core.files.storage import storages

    from reclaim import Ensured
    from reclaim.django.conf import reclaim_config
    from reclaim.django.writers import ensure

    key = storages["default"].save("blobs/reused.dat", ContentFile(b"same bytes"))
    api.run(reclaim_config())
    assert _quarantined_keys("default") == {key}

    blob = AssetBlob.objects.create(blob=key)  # a writer reuses the stored file, and commits
    assert ensure(blob, "blob") is Ensured.RESTORED
    assert _quarantined_keys("default") == set()
    assert ensure(blob, "blob") is Ensured.PRESENT
    assert fresh.s3_objects()[key] == b"same bytes"


def _quarantined_keys(store: str) -> set[str]:
    from reclaim.django.conf import reclaim_config
    from reclaim.lifecycle import open_journal

    with open_journal(reclaim_config()) as (_s, _c, journal):
        return {e.key for e in journal.select(store=store)}


def test_a_toml_file_adds_references_and_never_drops_the_discovered_ones(
    fresh: Project, tmp_path: Path
) -> None:
    from django.conf import settings
    from django.test import override_settings

    from reclaim.django.conf import reclaim_config

    toml = tmp_path / "reclaim.toml"
    toml.write_text(
        "[stores.default]\n"
        'grace = "3d"\n'
        "[[stores.default.references]]\n"
        'name = "thumbnails"\n'
        'database = "default"\n'
        "query = \"SELECT 'blobs/thumb.png'\"\n",
        encoding="utf-8",
    )
    with override_settings(RECLAIM={**settings.RECLAIM, "config": toml}):
        store = reclaim_config().stores["default"]
    assert {r.name for r in store.references} == {
        "archive.AssetBlob.blob",
        "archive.Upload.blob",
        "thumbnails",
    }
    assert store.grace == timedelta(days=3)
    assert store.min_age == timedelta(0)  # from settings.RECLAIM, not overridden


def test_a_storage_inside_another_stores_location_is_refused(fresh: Project) -> None:
    from django.apps import apps
    from django.core.files.storage import FileSystemStorage
    from django.db import models

    from reclaim.django.conf import reclaim_config

    class Scan(models.Model):
        page = models.FileField(storage=FileSystemStorage(location=fresh.media / "notes"))

        class Meta:
            app_label = "archive"

    try:
        with pytest.raises(ConfigError, match="lies inside storage 'local'"):
            reclaim_config()
    finally:
        del apps.all_models["archive"]["scan"]
        apps.clear_cache()
