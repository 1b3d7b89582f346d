"""``ensure()`` for a model's save path: a writer that reuses a stored file claims it.

DANDI's uploads reuse a blob when its checksum is already stored: the new row
points at an existing key. If that object was quarantined in the meantime, the
next purge would delete it, although a row now references it (the purge
re-checks, but a writer must not depend on a purge's timing). Call
:func:`ensure` after the row is committed::

    with transaction.atomic():
        asset = Asset.objects.create(blob=existing_blob)
    transaction.on_commit(lambda: ensure(asset, "blob"))   # or right after atomic()

It restores a quarantined object at once (``Ensured.RESTORED``), says
``Ensured.PRESENT`` when it is in place, and ``Ensured.GONE`` when a purge
already took it: upload it again. It takes no lease and records no run.
"""

from __future__ import annotations

from typing import Any

from reclaim import api
from reclaim.django.conf import reclaim_config
from reclaim.errors import ConfigError
from reclaim.lifecycle import Ensured

__all__ = ["ensure", "store_of_field"]


def store_of_field(config: Any, label: str) -> str:
    """The store whose references include the file field ``app_label.Model.field``."""
    for name, store in config.stores.items():
        if any(ref.name == label for ref in store.references):
            return str(name)
    raise ConfigError(f"no store has the file field {label} as a reference source", field=label)


def ensure(instance: Any, field_name: str, *, timeout: float = 60.0) -> Ensured:
    """Keep the file ``instance.<field_name>`` available now that a committed row references it.

    Raises :class:`~reclaim.errors.ConfigError` for a field that is not a file
    field of a store, or a file field left empty.
    """
    meta = instance._meta
    field = meta.get_field(field_name)
    concrete = field.model._meta.label  # an inherited field is a source of the parent's table
    value = getattr(instance, field_name)
    key = getattr(value, "name", None) or ""
    if not key:
        raise ConfigError(f"{meta.label}.{field_name} holds no file", field=f"{concrete}.{field_name}")
    config = reclaim_config()
    store = store_of_field(config, f"{concrete}.{field_name}")
    return api.ensure(config, store, key, timeout=timeout)
