"""Scenario toolkit: well-formed `getTransaction` results for wallets trading along price paths.

`World` (world.py) is the test-facing builder; `Ledger` (chain.py) keeps balances and
writes the raw results in `json` or `jsonParsed`, each with the flows and trade a correct
parser must report (`RawTx.expected`).
"""

from tests.scenarios.chain import Expected, Ledger, RawTx, address
from tests.scenarios.world import DAY, HOUR, Run, World, shuffle_within_slots

__all__ = ["DAY", "HOUR", "Expected", "Ledger", "RawTx", "Run", "World", "address", "shuffle_within_slots"]
