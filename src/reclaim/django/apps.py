"""The Django app: ``INSTALLED_APPS = [..., "reclaim.django"]``."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["ReclaimConfig"]


class ReclaimConfig(AppConfig):
    """reclaim inside a Django project: ``manage.py reclaim``, the Celery task, the admin pages."""

    name = "reclaim.django"
    label = "reclaim"
    verbose_name = "reclaim (storage garbage collection)"
    default = True
