"""Keys computed by a codec's own ``referenced_paths()``: the decoder of ``codec`` sources.

Named in the configuration as ``decoder = "reclaim.datajoint.paths:referenced_keys"``
with ``decoder_options = {codec = "...", store = "...", default = "true"|"false"}``,
so that a printed ``reclaim.toml`` (``reclaim datajoint config``) runs the same
sources under ``reclaim run``. The core imports this module by that name only
when such a source is read; it never imports DataJoint itself.
"""

from __future__ import annotations

from collections.abc import Iterator

from datajoint.codecs import get_codec

__all__ = ["referenced_keys"]


def referenced_keys(value: str, *, codec: str, store: str, default: str = "false") -> Iterator[str]:
    """The paths ``codec.referenced_paths(value)`` names in ``store``.

    A path with no store belongs to the default store: kept when ``default`` is
    ``"true"`` (``store`` is the default store). Raises what the codec raises
    (the source then fails closed) and ``TypeError`` for a path that is not a string.
    """
    for path, path_store in get_codec(codec).referenced_paths(value):
        if not isinstance(path, str):
            raise TypeError(f"<{codec}>.referenced_paths() returned {path!r}, not a path")
        if path_store == store or (not path_store and default == "true"):
            yield path.lstrip("/")
