"""The models as reference sources and row collections.

Every concrete model in the app registry is walked; each of its own file
fields (``FileField``, ``ImageField`` and any subclass) becomes a reference
source of the store its storage maps to: the model's table and the field's
column, on the database the router writes the model to. Proxy and swapped
models are skipped (their table is another model's); a parent's field is
read once, on the parent.

Row collections, declared rules and extra references name models by label
(``"api.Upload"``) and fields by name; Django lookups (``{"published":
False}``) are compiled by the ORM into SQL that selects the same rows, put
into the collection's ``where`` as ``pk IN (SELECT pk FROM (<query>) …)``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FileFieldRef", "collection_table", "compile_lookups", "file_fields", "model_column"]


@dataclass(frozen=True)
class FileFieldRef:
    """One file field of one model: where its keys are stored."""

    label: str
    """``app_label.Model.field``: how errors, sources and ``RECLAIM['fields']`` name it."""
    model: Any
    field: Any
    database: str
    table: str
    column: str

    @property
    def optional(self) -> bool:
        """A field that may be empty on every row (``blank`` or ``null``)."""
        return bool(self.field.blank or self.field.null)


def file_fields() -> Iterator[FileFieldRef]:
    """Every file field of every concrete model, in the registry's order."""
    from django.apps import apps
    from django.db import models, router

    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or meta.swapped:
            continue
        for field in meta.local_fields:
            if isinstance(field, models.FileField):
                yield FileFieldRef(
                    label=f"{meta.label}.{field.name}",
                    model=model,
                    field=field,
                    database=router.db_for_write(model) or "default",
                    table=meta.db_table,
                    column=field.column,
                )


def _model(label: str, where: str) -> Any:
    from django.apps import apps

    try:
        return apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise ValueError(f"{where}: {label!r} is not an installed model ({exc})") from None


def model_column(label: str, field_name: str, where: str) -> tuple[Any, str, str]:
    """``(model, table, column)`` of a model's field named by label and name."""
    from django.core.exceptions import FieldDoesNotExist

    model = _model(label, where)
    try:
        field = model._meta.get_field(field_name)
    except FieldDoesNotExist:
        raise ValueError(f"{where}: model {label!r} has no field {field_name!r}") from None
    column = getattr(field, "column", None)
    if not column:
        raise ValueError(f"{where}: field {label}.{field_name} has no column of its own")
    return model, model._meta.db_table, str(column)


def collection_table(label: str, where: str) -> tuple[Any, str, str]:
    """``(model, database alias, table)`` of a collection's model."""
    from django.db import router

    model = _model(label, where)
    return model, router.db_for_write(model) or "default", model._meta.db_table


def compile_lookups(model: Any, database: str, lookups: Mapping[str, Any], where: str) -> str:
    """SQL selecting the rows ``model.objects.filter(**lookups)`` selects, as a condition on its table.

    The ORM compiles the lookups (joins included) into a subquery of primary
    keys (a derived table, so MySQL may delete from the table it reads); the
    values are written as SQL literals, since a configured ``where`` has no
    parameters. A value of a type with no unambiguous literal raises
    ``ValueError`` naming it.
    """
    from django.core.exceptions import FieldError
    from django.db import connections
    from django.db.models import F

    try:
        query = (
            model._base_manager.using(database)
            .filter(**dict(lookups))
            .annotate(reclaim_pk=F("pk"))
            .values("reclaim_pk")
        )
        sql, params = query.query.get_compiler(using=database).as_sql()
    except (FieldError, ValueError, TypeError) as exc:
        raise ValueError(
            f"{where}: lookups {dict(lookups)!r} do not apply to {model._meta.label}: {exc}"
        ) from None
    vendor = connections[database].vendor
    literals = tuple(_literal(value, vendor, where) for value in params)
    inner = sql % literals
    pk = connections[database].ops.quote_name(model._meta.pk.column)
    # the derived table's column is named and qualified: an unqualified name missing from the
    # subquery would resolve to the outer table's column and select every row
    return f"{pk} IN (SELECT reclaim_lookup.reclaim_pk FROM ({inner}) reclaim_lookup)"


def _literal(value: Any, vendor: str, where: str) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        if vendor == "sqlite":
            return "1" if value else "0"
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | decimal.Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time | uuid.UUID):
        value = value.isoformat() if not isinstance(value, uuid.UUID) else str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise ValueError(f"{where}: the lookup value {value!r} ({type(value).__name__}) has no SQL literal")
