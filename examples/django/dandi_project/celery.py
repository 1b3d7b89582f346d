"""The Celery app (Celery's Django layout); the beat schedule is in settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dandi_project.settings")

app = Celery("dandi_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
