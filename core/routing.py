"""Which shard owns a wallet: a stable digest of the address, the same in every process.

Python's `hash()` of a `str` is salted per process, so it must never pick a shard; a
BLAKE2b digest of the UTF-8 address is stable across processes, machines and versions.
"""

from __future__ import annotations

import hashlib

__all__ = ["shard_for"]


def shard_for(wallet: str, shard_count: int) -> int:
    """Shard index in `[0, shard_count)` for `wallet`."""
    if shard_count < 1:
        raise ValueError(f"shard_count must be at least 1, got {shard_count}")
    if shard_count == 1:
        return 0
    digest = hashlib.blake2b(wallet.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shard_count
