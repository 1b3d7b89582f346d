"""The admin, with reclaim's pages (overview, quarantine, row archive, restore) beside it."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/reclaim/", include("reclaim.django.urls")),
    path("admin/", admin.site.urls),
]
