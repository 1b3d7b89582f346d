"""Row collections: a collection's reflected table, its candidate predicate, rows as JSON."""

from reclaim.rows.codec import decode_row, decode_value, encode_row, encode_value
from reclaim.rows.table import (
    CollectionTable,
    Extractor,
    InboundRef,
    OwnedSource,
    describe,
    encode_ref,
    reference_selector,
)

__all__ = [
    "CollectionTable",
    "Extractor",
    "InboundRef",
    "OwnedSource",
    "decode_row",
    "decode_value",
    "describe",
    "encode_ref",
    "encode_row",
    "encode_value",
    "reference_selector",
]
