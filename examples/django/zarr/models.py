"""Zarr archives: a directory of objects under zarr/<zarr_id>/ in the bucket."""

import uuid

from django.db import models


class ZarrArchive(models.Model):
    zarr_id = models.UUIDField(default=uuid.uuid4, unique=True)
    dandiset = models.ForeignKey("api.Dandiset", on_delete=models.PROTECT)
    modified = models.DateTimeField(auto_now=True)
