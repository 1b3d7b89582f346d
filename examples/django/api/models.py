"""The part of DANDI's data model that owns storage: dandisets, versions, assets, blobs, uploads."""

from django.db import models


class Dandiset(models.Model):
    name = models.CharField(max_length=200)


class AssetBlob(models.Model):
    """One stored file, shared by every asset with the same content."""

    blob = models.FileField(upload_to="blobs/")
    sha256 = models.CharField(max_length=64, unique=True)
    size = models.BigIntegerField()
    created = models.DateTimeField(auto_now_add=True)


class Asset(models.Model):
    """A path in a dandiset pointing at a blob or a Zarr archive; kept while a version lists it."""

    path = models.CharField(max_length=512)
    blob = models.ForeignKey(AssetBlob, null=True, blank=True, on_delete=models.PROTECT)
    zarr = models.ForeignKey("zarr.ZarrArchive", null=True, blank=True, on_delete=models.PROTECT)
    published = models.BooleanField(default=False)
    modified = models.DateTimeField(auto_now=True)


class Version(models.Model):
    dandiset = models.ForeignKey(Dandiset, on_delete=models.PROTECT)
    version = models.CharField(max_length=32)
    assets = models.ManyToManyField(Asset, related_name="versions")


class Upload(models.Model):
    """A multipart upload in progress: its object becomes an AssetBlob, or is abandoned."""

    blob = models.FileField(upload_to="uploads/", blank=True)
    etag = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(auto_now_add=True)
