"""Moved to `streams.localnode.jupiter`; re-exported for older imports."""

from streams.localnode.jupiter import LocalJupiter, Seen

__all__ = ["LocalJupiter", "Seen"]
