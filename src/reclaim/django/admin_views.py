"""Admin pages for staff users: the overview, the quarantine, the row archive, and restore.

Mounted beside the admin (``path("admin/reclaim/", include("reclaim.django.urls"))``
before ``admin.site.urls``), rendered in the admin's own layout. Reading needs
a staff user; restoring needs ``is_superuser`` or the ``reclaim.restore``
permission name given by ``RECLAIM["restore_permission"]``. A restore is two
steps: the selected objects or rows are shown on a confirmation page, and only
its POST restores them; every restore is one reclaim run (in ``reclaim runs``)
and one entry in Django's admin log naming the admin and that run.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from reclaim import api
from reclaim.catalog import browse
from reclaim.catalog.archive import RowState
from reclaim.catalog.journal import State
from reclaim.django.conf import reclaim_config
from reclaim.errors import ReclaimError
from reclaim.lifecycle import open_journal

__all__ = ["archive", "overview", "quarantine"]

#: how many entries or rows a page lists, newest first; the next page starts below the last one's id
PAGE = 100


def _search(request: HttpRequest) -> tuple[str, str | None, int | None]:
    """The search box as a glob (plain text matches anywhere in the key), and the page's ``before`` id."""
    q = request.GET.get("q", "").strip()
    glob = (q if any(c in q for c in "*?[") else f"*{q}*") if q else None
    before = request.GET.get("before", "")
    return q, glob, int(before) if before.isdigit() else None


def _next_page(request: HttpRequest, items: list[Any]) -> str | None:
    """The query string of the next page, when this one is full."""
    if len(items) < PAGE:
        return None
    query = request.GET.copy()
    query["before"] = str(items[-1].id)
    return query.urlencode()


def _context(request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
    return {**admin.site.each_context(request), "title": title, **extra}


def _may_restore(request: HttpRequest) -> bool:
    from django.conf import settings

    user: Any = request.user
    permission = (getattr(settings, "RECLAIM", {}) or {}).get("restore_permission")
    return bool(user.is_superuser or (permission and user.has_perm(permission)))


def _audit(request: HttpRequest, what: str, run_id: int | None) -> None:
    """One admin log entry naming the admin, what was restored and the reclaim run that did it."""
    user: Any = request.user
    LogEntry.objects.create(
        user_id=user.pk,
        content_type=None,
        object_id=str(run_id) if run_id is not None else None,
        object_repr=f"reclaim restore run {run_id}"[:200],
        action_flag=CHANGE,
        change_message=what,
    )


@staff_member_required
def overview(request: HttpRequest) -> HttpResponse:
    """The status numbers: per store and collection, what is quarantined or archived; the lease; last runs."""
    try:
        report = api.status(reclaim_config())
    except ReclaimError as exc:
        return TemplateResponse(request, "reclaim/error.html", _context(request, "reclaim", error=str(exc)))
    return TemplateResponse(request, "reclaim/overview.html", _context(request, "reclaim", report=report))


@staff_member_required
@require_http_methods(["GET", "POST"])
def quarantine(request: HttpRequest) -> HttpResponse:
    """Quarantined objects by key (a glob, or text it contains) and store, paged; restore on confirmation."""
    config = reclaim_config()
    if request.method == "POST":
        return _restore_objects(request, config)
    q, glob, before = _search(request)
    store = request.GET.get("store") or None
    with open_journal(config) as (_session, catalog, _journal):
        entries = browse.page_entries(
            catalog, store=store, states=(State.QUARANTINED,), key_glob=glob, before=before, limit=PAGE
        )
    context = _context(
        request,
        "Quarantined objects",
        entries=entries,
        next_page=_next_page(request, entries),
        q=q,
        store=store or "",
        stores=sorted(config.stores),
        may_restore=_may_restore(request),
    )
    return TemplateResponse(request, "reclaim/quarantine.html", context)


def _restore_objects(request: HttpRequest, config: Any) -> HttpResponse:
    if not _may_restore(request):
        raise PermissionDenied
    chosen = request.POST.getlist("selected")  # "store:key" (a store name has no ":")
    picked: dict[str, list[str]] = {}
    for item in chosen:
        store, _, key = item.partition(":")
        if store in config.stores and key:
            picked.setdefault(store, []).append(key)
    if not picked:
        messages.warning(request, "Select the objects to restore first.")
        return HttpResponseRedirect(reverse("reclaim:quarantine"))
    if request.POST.get("confirm") != "yes":
        context = _context(request, "Restore these objects?", picked=picked, chosen=chosen)
        return TemplateResponse(request, "reclaim/confirm_objects.html", context)
    for store, keys in picked.items():
        try:
            report = api.restore(config, keys=keys, store=store, user=request.user.get_username())
        except ReclaimError as exc:
            messages.error(request, f"store {store}: {exc}")
            continue
        _audit(request, f"restored {len(keys)} object(s) of store {store}: {', '.join(keys)}", report.run_id)
        messages.success(request, f"store {store}: {len(keys)} object(s) restored (run {report.run_id})")
    return HttpResponseRedirect(reverse("reclaim:quarantine"))


@staff_member_required
@require_http_methods(["GET", "POST"])
def archive(request: HttpRequest) -> HttpResponse:
    """Archived rows by primary key (a glob, or text it contains) and collection, paged; restore on OK."""
    config = reclaim_config()
    if request.method == "POST":
        return _restore_rows(request, config)
    q, glob, before = _search(request)
    collection = request.GET.get("collection") or None
    with open_journal(config) as (_session, catalog, _journal):
        rows = browse.page_rows(
            catalog,
            collection=collection,
            states=(RowState.ARCHIVED,),
            pk_glob=glob,
            before=before,
            limit=PAGE,
        )
    context = _context(
        request,
        "Archived rows",
        rows=rows,
        next_page=_next_page(request, rows),
        q=q,
        collection=collection or "",
        collections=sorted(config.collections),
        may_restore=_may_restore(request),
    )
    return TemplateResponse(request, "reclaim/archive.html", context)


def _restore_rows(request: HttpRequest, config: Any) -> HttpResponse:
    if not _may_restore(request):
        raise PermissionDenied
    chosen = request.POST.getlist("selected")  # "collection:pk" (a collection name has no ":")
    picked: dict[str, list[str]] = {}
    for item in chosen:
        collection, _, pk = item.partition(":")
        if collection in config.collections and pk:
            picked.setdefault(collection, []).append(pk)
    if not picked:
        messages.warning(request, "Select the rows to restore first.")
        return HttpResponseRedirect(reverse("reclaim:archive"))
    if request.POST.get("confirm") != "yes":
        context = _context(request, "Restore these rows?", picked=picked, chosen=chosen)
        return TemplateResponse(request, "reclaim/confirm_rows.html", context)
    for collection, pks in picked.items():
        try:
            report = api.restore_rows(
                config, collection=collection, pks=pks, user=request.user.get_username()
            )
        except ReclaimError as exc:
            messages.error(request, f"collection {collection}: {exc}")
            continue
        _audit(
            request,
            f"restored {report.result.total} row(s) of collection {collection}: {', '.join(pks)}",
            report.run_id,
        )
        messages.success(
            request, f"collection {collection}: {report.result.total} row(s) restored (run {report.run_id})"
        )
    return HttpResponseRedirect(reverse("reclaim:archive"))
