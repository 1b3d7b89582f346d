"""What the schemas themselves say is stored outside the database: every external attribute.

Every table of every given schema is walked through DataJoint's own headings.
An attribute with a codec is classified by following its codec chain with
``datajoint.codecs.resolve_dtype`` (the resolution DataJoint itself uses):

- ``hash``: the chain ends in ``<hash@>`` (``<blob@>``, ``<attach@>``, ``<hash@>``
  and any custom codec layered on them): the column holds ``{"path", "store", …}``
  and the key is the exact ``path``;
- ``schema``: a ``SchemaCodec`` (``<object@>``, ``<npy@>``, custom subclasses):
  ``path`` names a file or a directory object (everything under it) with its
  ``.manifest.json`` sidecar;
- ``codec``: any other codec with a store, and every custom codec that overrides
  ``referenced_paths()``: the keys are computed in Python by the codec's own
  ``referenced_paths()`` (:mod:`reclaim.datajoint.paths`);
- in-table (``<blob>``, ``<attach>`` without a store) and ``<filepath@>`` (user-
  managed files, outside the managed sections): nothing to keep.

Fail closed: a schema or table that cannot be read, a codec that is not
registered in this process, or a chain DataJoint cannot resolve raises
:class:`UnmappedAttribute` naming the schema, table and attribute, before any
configuration is built. DataJoint's own ``dj.gc`` logs such errors and carries
on; here partial knowledge never leads to a candidate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from datajoint.builtin_codecs.schema import SchemaCodec
from datajoint.codecs import Codec, resolve_dtype

from reclaim.errors import ReclaimError

__all__ = ["ExternalAttribute", "UnmappedAttribute", "discover", "fingerprint"]

Section = Literal["hash", "schema", "codec"]

_BUILTIN = {"blob", "attach", "hash", "object", "npy"}
_USER_MANAGED = {"filepath"}  # paths the user manages, outside the hash and schema sections


class UnmappedAttribute(ReclaimError):
    """An attribute, table or schema reclaim cannot read the references of: nothing moves."""

    exit_code = 7

    def __init__(self, schema: str, table: str | None, attribute: str | None, reason: str) -> None:
        where = ".".join(p for p in (schema, table, attribute) if p)
        super().__init__(f"DataJoint {where}: {reason}; nothing was moved or deleted")
        self.schema = schema
        self.table = table
        self.attribute = attribute


@dataclass(frozen=True)
class ExternalAttribute:
    """One attribute whose values reference objects in a store."""

    schema: str
    """The DataJoint schema (a MySQL database, a PostgreSQL schema)."""
    table: str
    """The SQL table name (``session``, ``_recording``, ``__spike_sorting``, ``scan__field``)."""
    attribute: str
    codec: str
    store: str | None
    """The store the declaration names (``None``: the default store)."""
    section: Section

    @property
    def label(self) -> str:
        """``schema.table.attribute``: how reports and errors name it."""
        return f"{self.schema}.{self.table}.{self.attribute}"


def _overrides_referenced_paths(codec: Codec) -> bool:
    return type(codec).referenced_paths is not Codec.referenced_paths


def classify(schema: str, table: str, name: str, attr: Any) -> ExternalAttribute | None:
    """The attribute's section, ``None`` for one with nothing outside the database."""
    codec = attr.codec
    if not codec:
        return None
    codec_name = getattr(codec, "name", None)
    if type(codec).__name__ == "_MissingType" or not isinstance(codec, Codec):
        raise UnmappedAttribute(
            schema, table, name, f"codec <{codec_name}> is not registered in this process (import its module)"
        )
    store = attr.store
    if codec_name in _USER_MANAGED:
        return None
    try:
        spec = f"<{codec_name}@{store}>" if store is not None else f"<{codec_name}>"
        _final, chain, _resolved = resolve_dtype(spec)
    except Exception as exc:  # fail closed: an unresolved chain may hide a store
        raise UnmappedAttribute(schema, table, name, f"codec chain of <{codec_name}> fails: {exc}") from None
    custom = [c for c in chain if c.name not in _BUILTIN]
    if any(_overrides_referenced_paths(c) for c in chain):
        section: Section = "codec"
    elif any(isinstance(c, SchemaCodec) for c in chain):
        section = "codec" if custom else "schema"
    elif any(c.name == "hash" for c in chain):
        section = "hash"
    elif store is not None:
        section = "codec"  # a custom codec with a store: only its referenced_paths() knows
    else:
        return None
    return ExternalAttribute(schema, table, name, str(codec_name), store or None, section)


def _schema_name(schema: Any) -> str:
    return str(schema.database)


def discover(schemas: Sequence[Any]) -> list[ExternalAttribute]:
    """Every external attribute of every table of ``schemas``, in a stable order.

    Raises :class:`UnmappedAttribute` for a schema whose tables cannot be
    listed, a table whose heading cannot be read, or an attribute whose codec
    cannot be mapped.
    """
    found: list[ExternalAttribute] = []
    for schema in schemas:
        name = _schema_name(schema)
        try:
            tables = list(schema.list_tables())
        except Exception as exc:
            raise UnmappedAttribute(name, None, None, f"cannot list tables: {exc}") from None
        for table_name in sorted(tables):
            try:
                heading = schema.get_table(table_name).heading
                attributes = dict(heading.attributes)
            except Exception as exc:
                raise UnmappedAttribute(name, table_name, None, f"cannot read the heading: {exc}") from None
            for attr_name, attr in attributes.items():
                external = classify(name, table_name, attr_name, attr)
                if external is not None:
                    found.append(external)
    return found


def fingerprint(schemas: Sequence[Any]) -> str:
    """A digest of every table and attribute definition of ``schemas``, read afresh.

    Compared before and after a scan: a definition changed during the run
    (a table added or altered) aborts it before anything moves.
    """
    lines: list[str] = []
    for schema in schemas:
        name = _schema_name(schema)
        try:
            tables = sorted(schema.list_tables())
            for table_name in tables:
                # a new FreeTable reads its heading afresh: an ALTER by another process shows
                heading = schema.get_table(table_name).heading
                lines.extend(_attribute_lines(name, table_name, heading.attributes.values()))
        except Exception as exc:
            raise UnmappedAttribute(name, None, None, f"cannot read the definitions: {exc}") from None
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _attribute_lines(schema: str, table: str, attributes: Iterable[Any]) -> list[str]:
    return [f"{schema}.{table}.{a.name}:{a.type}:{a.store}" for a in attributes]
