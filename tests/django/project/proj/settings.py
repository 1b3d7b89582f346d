"""Settings of the test project: PostgreSQL, S3 (moto's server) as default storage, a local storage."""

import os

env = os.environ
SECRET_KEY = "test-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "proj.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "archive",
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
        "NAME": env.get("RECLAIM_DJ_DB", "reclaim_django_test"),
        "USER": "postgres",
        "PASSWORD": "pg-password-only-in-settings",  # trust auth ignores it; it must never be printed
        "HOST": "127.0.0.1",
        "PORT": "5432",
    }
}

STORAGES = {
    "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.get("RECLAIM_DJ_BUCKET", "reclaim-django"),
            "location": "media",
            "endpoint_url": env.get("RECLAIM_DJ_S3", "http://127.0.0.1:5000"),
            "region_name": "us-east-1",
            "access_key": "AKIDDJANGOTEST",
            "secret_key": "s3-secret-only-in-settings",
        },
    },
    "local": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env.get("RECLAIM_DJ_MEDIA", "/tmp/reclaim-django-media")},  # noqa: S108
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

RECLAIM = {
    "stores": {
        "default": {"min_age": "0s", "grace": "7d", "max_fraction": 1.0},
        "local": {"min_age": "0s", "grace": "7d", "max_fraction": 1.0},
    },
    "collections": {
        "uploads": {
            "model": "archive.Upload",
            "age_field": "created",
            "min_age": "1d",
            "filter": {"finished": False},
        },
    },
}

_redis = env.get("RECLAIM_DJ_REDIS", "redis://127.0.0.1:6379/11")
CELERY_BROKER_URL = _redis
CELERY_RESULT_BACKEND = _redis
CELERY_TASK_DEFAULT_QUEUE = env.get("RECLAIM_DJ_QUEUE", "reclaim-test")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

STATIC_URL = "static/"

if env.get("RECLAIM_DJ_BAD_COLLECTION"):  # a test of how a wrong setting is reported
    RECLAIM["collections"]["bad"] = {"model": env["RECLAIM_DJ_BAD_COLLECTION"], "age_field": "created"}
