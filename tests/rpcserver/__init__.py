"""The local Solana JSON-RPC node now lives in the package (`streams.localnode`); re-exported here so
older imports keep working. `tests.rpcserver.running` (a source run in a test's background) stays."""

from streams.localnode import Ledger, LocalRpcServer, StoredTx, Subscription, load_results

__all__ = ["LocalRpcServer", "Ledger", "StoredTx", "Subscription", "load_results"]
