"""Settings of the DANDI-shaped example: PostgreSQL, the bucket through django-storages, DANDI's rules.

Everything that differs between machines comes from the environment:
``DANDI_DB`` (database name), ``DANDI_BUCKET``, ``DANDI_S3_ENDPOINT`` (the S3
test server; unset for AWS), ``REDIS_URL``.
"""

import os

from celery.schedules import crontab

env = os.environ
SECRET_KEY = env.get("DJANGO_SECRET_KEY", "example-only")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
ROOT_URLCONF = "dandi_project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "api",
    "zarr",
    "reclaim.django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": env.get("DANDI_DB", "dandi"),
        "USER": env.get("DANDI_DB_USER", "postgres"),
        "PASSWORD": env.get("DANDI_DB_PASSWORD", ""),
        "HOST": env.get("DANDI_DB_HOST", "127.0.0.1"),
        "PORT": "5432",
    }
}

STORAGES = {
    "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.get("DANDI_BUCKET", "dandiarchive"),
            "endpoint_url": env.get("DANDI_S3_ENDPOINT") or None,
            "region_name": "us-east-1",
        },
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# DANDI's rules (see examples/dandi/README.md for why each is what it is)
RECLAIM = {
    "catalog": {"database": "default", "schema": "reclaim"},
    "stores": {
        # objects nothing references, older than 7 days, quarantined for 7 days before purge
        "default": {"min_age": "7d", "grace": "7d", "mode": "mark", "retention": "30d", "max_fraction": 0.5},
    },
    "references": [
        # a Zarr archive is the directory zarr/<zarr_id>/: every key under it is kept
        {
            "store": "default",
            "model": "zarr.ZarrArchive",
            "field": "zarr_id",
            "kind": "prefix",
            "add_prefix": "zarr/",
        },
    ],
    "collections": {
        # uploads abandoned for 7 days
        "uploads": {"model": "api.Upload", "age_field": "created", "min_age": "7d", "retention": "30d"},
        # blobs no asset points at, for 7 days
        "assetblobs": {"model": "api.AssetBlob", "age_field": "created", "min_age": "7d", "retention": "30d"},
        # draft assets in no version for 30 days (the versions' M2M table is found by reflection)
        "assets": {
            "model": "api.Asset",
            "age_field": "modified",
            "min_age": "30d",
            "filter": {"published": False},
            "retention": "30d",
        },
        # Zarr archives not modified for 30 days: only reported
        "zarrs": {"model": "zarr.ZarrArchive", "age_field": "modified", "min_age": "30d", "action": "report"},
    },
}

CELERY_BROKER_URL = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_BEAT_SCHEDULE = {
    # one cycle a night: recover, purge what is due, collect rows, quarantine new orphans
    "reclaim-cycle": {"task": "reclaim.django.tasks.run_cycle", "schedule": crontab(minute=0, hour=3)},
}
