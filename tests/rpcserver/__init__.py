"""A local Solana JSON-RPC node (HTTP + websocket on 127.0.0.1) serving recorded transactions.

Reusable by any test that needs a chain: see `LocalRpcServer` for the control API.
"""

from tests.rpcserver.ledger import Ledger, StoredTx, load_results
from tests.rpcserver.methods import Subscription
from tests.rpcserver.server import LocalRpcServer

__all__ = ["LocalRpcServer", "Ledger", "StoredTx", "Subscription", "load_results"]
