"""A few models with files: blobs and uploads in S3 (the default storage), notes on a local disk."""

from django.core.files.storage import storages
from django.db import models


def local_storage():  # a callable storage, as Django allows
    return storages["local"]


class AssetBlob(models.Model):
    blob = models.FileField(upload_to="blobs/")
    created = models.DateTimeField(auto_now_add=True)


class Asset(models.Model):
    path = models.CharField(max_length=200)
    blob = models.ForeignKey(AssetBlob, null=True, on_delete=models.PROTECT)


class Upload(models.Model):
    blob = models.FileField(upload_to="uploads/", blank=True)
    finished = models.BooleanField(default=False)
    created = models.DateTimeField()


class Note(models.Model):
    attachment = models.FileField(storage=local_storage, upload_to="notes/", blank=True)
