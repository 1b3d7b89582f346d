"""Reference sources and their ordered merge: what each store must keep."""

from reclaim.references.databases import create_database_engine, dialect_of
from reclaim.references.extsort import sort_externally
from reclaim.references.merge import Coverage, CoveringReference, PageCoverage, merge_sources, upper_bound
from reclaim.references.registry import Databases
from reclaim.references.sources import (
    Reference,
    ReferenceSource,
    SourceCounters,
    candidate_values,
    referenced_now,
)
from reclaim.references.span import KeySpan

__all__ = [
    "Coverage",
    "CoveringReference",
    "Databases",
    "KeySpan",
    "PageCoverage",
    "Reference",
    "ReferenceSource",
    "SourceCounters",
    "candidate_values",
    "create_database_engine",
    "dialect_of",
    "merge_sources",
    "referenced_now",
    "sort_externally",
    "upper_bound",
]
