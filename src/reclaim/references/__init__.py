"""Reference sources and their ordered merge: what each store must keep."""

from reclaim.references.databases import create_database_engine, dialect_of
from reclaim.references.extsort import sort_externally
from reclaim.references.merge import Coverage, CoveringReference, merge_sources
from reclaim.references.registry import Databases
from reclaim.references.sources import Reference, ReferenceSource, SourceCounters

__all__ = [
    "Coverage",
    "CoveringReference",
    "Databases",
    "Reference",
    "ReferenceSource",
    "SourceCounters",
    "create_database_engine",
    "dialect_of",
    "merge_sources",
    "sort_externally",
]
