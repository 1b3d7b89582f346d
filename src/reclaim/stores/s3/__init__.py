"""A store in an S3 bucket (``s3://bucket/prefix``), over s3fs's aiobotocore client.

Why not the generic adapter:

- **Listing streams.** ``fs.find`` builds the whole listing in memory; here
  ``ListObjectsV2`` is paged (``MaxKeys``, ``ContinuationToken``) one request
  per page as the consumer iterates, so memory is one page. S3 returns keys in
  UTF-8 byte order, the order the scan needs, together with size, mtime and
  ETag, so no stat call is ever needed. A failure on any page raises
  ``StoreError``: a listing is complete or an error.
- **Deletes are literal and checked.** ``fs.rm`` would expand ``*?[`` in keys as
  glob patterns and ignores per-key errors of ``DeleteObjects``; here each
  batch of up to 1000 keys is one ``DeleteObjects`` request and any per-key
  error (other than an already missing key) raises ``StoreError``.
- **Moves are guarded copies.** A move is copy + delete (``atomic_move`` is
  false, so ``mark`` is the default mode). The copy is conditional on the
  source ETag seen before (``CopySourceIfMatch``) and on the destination not
  existing (``IfNoneMatch``), and the source is deleted only if it still has
  that ETag (``IfMatch``): an object a writer rewrites mid-move stays in place.
  Servers that ignore these conditions still get the up-front checks.
- **Purged objects come back from versions.** In a bucket that keeps versions,
  a delete only adds a delete marker; :meth:`S3Store.restore_version` copies
  the newest remaining version of a key (``ListObjectVersions``, then
  ``CopyObject`` with the ``VersionId``) back to the key when nothing is
  stored there, and never overwrites an object that is. So the S3 store is a
  :class:`~reclaim.stores.base.VersionedStore`.
- **Throttling is retried adaptively.** Unless the storage options say
  otherwise, the client is made with botocore's ``config_kwargs={"retries":
  {"mode": "adaptive", "max_attempts": 10}}``: a ``SlowDown`` or 503 is
  retried with backoff and the client paces its own request rate, so a large
  delete or listing slows down instead of failing. These defaults are merged
  under the user's ``config_kwargs`` key by key (the user's values win, e.g.
  ``{"retries": {"max_attempts": 3}}`` keeps the adaptive mode).
- **Listing can be partitioned.** With ``partitions > 1`` (the storage option
  ``list_partitions`` of :func:`~reclaim.stores.open_store`, default 1: one
  stream), a full listing splits the key space at first-level prefixes
  (:meth:`S3Store.first_level`: the store is a
  :class:`~reclaim.stores.base.PartitionableStore`) into that many disjoint
  ranges, lists them concurrently and yields them in order
  (:func:`~reclaim.stores.partitioned.list_partitioned`); a listing given
  ``start_after``/``end_before`` is always one stream.
- **Closing** closes the client's HTTP session; a later request opens a new one.

The modules, one concept each, share one
:class:`~reclaim.stores.s3._client.BucketClient` (requests, keys, errors):
``_store`` (the store), ``_listing`` (``ListObjectsV2`` paging, the first
level), ``_stat`` (``stat_many``) and ``_versions`` (versioned restore).

Storage options (``key``, ``secret``, ``anon``, ``client_kwargs`` with
``endpoint_url``, ...) are passed to ``s3fs.S3FileSystem`` (all but
``list_partitions``); credential values are masked in every error message.
"""

from reclaim.stores.s3._store import S3Store

__all__ = ["S3Store"]
