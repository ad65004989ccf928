"""A local Solana JSON-RPC node (HTTP + websocket on 127.0.0.1) serving the transactions it is given.

A real protocol peer, not a mock: the sources speak to it exactly as to a Helius or
validator endpoint (`transactionSubscribe`, `logsSubscribe`, `slotSubscribe`,
`getTransaction`, `getSignaturesForAddress`, `getBlockTime`, …), so tests, `oof bench live`
and local experiments run the real live path end to end. See `LocalRpcServer` for the
control API (`publish`, forced disconnects, injected HTTP failures), `LocalJupiter`
(`streams.localnode.jupiter`) for Jupiter's Price v3 endpoint and `LocalBirdeye`
(`streams.localnode.birdeye`) for Birdeye's historical OHLCV.
"""

from streams.localnode.ledger import Ledger, StoredTx, load_results
from streams.localnode.methods import Subscription
from streams.localnode.server import LocalRpcServer

__all__ = ["LocalRpcServer", "Ledger", "StoredTx", "Subscription", "load_results"]
