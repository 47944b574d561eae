"""The local full-text search index: ``build_index`` (:mod:`search_tools.index_build`) writes it,
``LocalIndex`` (:mod:`search_tools.index_read`) queries it; the file format is :mod:`search_tools.index_schema`."""

from search_tools.index_build import MAX_FILE_BYTES, IndexBuildError, IndexStats, build_index, iter_documents
from search_tools.index_read import IndexNotFoundError, LocalIndex, fts_query

__all__ = [
    "MAX_FILE_BYTES",
    "IndexBuildError",
    "IndexNotFoundError",
    "IndexStats",
    "LocalIndex",
    "build_index",
    "fts_query",
    "iter_documents",
]
