"""``path("admin/reclaim/", include("reclaim.django.urls"))``, before ``admin.site.urls``."""

from __future__ import annotations

from django.urls import path

from reclaim.django import admin_views

app_name = "reclaim"

urlpatterns = [
    path("", admin_views.overview, name="overview"),
    path("quarantine/", admin_views.quarantine, name="quarantine"),
    path("archive/", admin_views.archive, name="archive"),
]
