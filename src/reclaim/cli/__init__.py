"""The command-line interface (an adapter over :mod:`reclaim.api`)."""

from reclaim.cli.app import app, main

__all__ = ["app", "main"]
