"""The local node's chain: `getTransaction` results indexed by signature and account.

Order is (slot, insertion): what the node would call newest-first. Published transactions
are stamped one slot above the head unless given a slot, so the publish order is the
chain's order even though recordings come from scattered mainnet slots.
"""

from __future__ import annotations

import bisect
import copy
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.parse import unwrap_result
from streams.codec import tx_account_keys, tx_signature

__all__ = ["StoredTx", "Ledger", "load_results"]

SPL_TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"


@dataclass(frozen=True, slots=True)
class StoredTx:
    signature: str
    slot: int
    seq: int
    keys: tuple[str, ...]
    result: Mapping[str, Any]

    @property
    def order(self) -> tuple[int, int]:
        return (self.slot, self.seq)

    @property
    def err(self) -> Any:
        return (self.result.get("meta") or {}).get("err")

    @property
    def logs(self) -> list[str]:
        # Nodes may omit logMessages; solders 0.29 cannot read `"logs": null`, so send [].
        return list((self.result.get("meta") or {}).get("logMessages") or [])

    @property
    def version(self) -> int | None:
        version = self.result.get("version")
        return version if isinstance(version, int) else None  # "legacy" / missing

    def signature_entry(self) -> dict[str, Any]:
        return {
            "signature": self.signature,
            "slot": self.slot,
            "err": self.err,
            "memo": None,
            "blockTime": self.result.get("blockTime"),
            "confirmationStatus": "confirmed",
        }


def load_results(path: Path | str) -> list[dict[str, Any]]:
    """The results of a JSONL recording (bare results, `{"result": …}` or fixture rows)."""
    with Path(path).open() as fh:
        return [dict(unwrap_result(json.loads(line))) for line in fh if line.strip()]


class Ledger:
    def __init__(self, results: Iterable[Mapping[str, Any]] = ()) -> None:
        self._by_sig: dict[str, StoredTx] = {}
        self._by_key: defaultdict[str, list[StoredTx]] = defaultdict(list)  # oldest first
        self._by_slot: defaultdict[int, list[StoredTx]] = defaultdict(list)
        self._seq = 0
        self.head = 0
        for result in results:
            self.add(result, slot=result.get("slot"))

    def __len__(self) -> int:
        return len(self._by_sig)

    def add(self, result: Mapping[str, Any], *, slot: int | None = None, copy_result: bool = True) -> StoredTx:
        """Store a copy of `result` at `slot` (default: one above the head). `copy_result=False` stores the
        caller's dict itself (its `slot` set): for a caller that hands it over, e.g. a load generator."""
        stored = copy.deepcopy(dict(result)) if copy_result or not isinstance(result, dict) else result
        stored["slot"] = slot if isinstance(slot, int) else self.head + 1
        signature = tx_signature(stored)
        if signature in self._by_sig:
            raise ValueError(f"{signature} is already in the ledger")
        self._seq += 1
        tx = StoredTx(signature, stored["slot"], self._seq, tx_account_keys(stored), stored)
        self._by_sig[signature] = tx
        for key in dict.fromkeys(tx.keys):
            bisect.insort(self._by_key[key], tx, key=lambda t: t.order)
        self._by_slot[tx.slot].append(tx)
        self.head = max(self.head, tx.slot)
        return tx

    def get(self, signature: str) -> StoredTx | None:
        return self._by_sig.get(signature)

    def addresses(self) -> set[str]:
        return set(self._by_key)

    def signatures_for(
        self, address: str, *, before: str | None = None, until: str | None = None, limit: int = 1000
    ) -> list[StoredTx]:
        """Newest first, strictly older than `before`, stopping before `until`."""
        out: list[StoredTx] = []
        started = before is None
        for tx in reversed(self._by_key.get(address, [])):
            if not started:
                started = tx.signature == before
                continue
            if tx.signature == until or len(out) >= limit:
                break
            out.append(tx)
        return out

    def block_time(self, slot: int) -> int | None:
        """The recorded time of a slot we hold; KeyError for a slot we know nothing about."""
        txs = self._by_slot.get(slot)
        if not txs:
            raise KeyError(slot)
        return next((t.result["blockTime"] for t in txs if isinstance(t.result.get("blockTime"), int)), None)

    def token_accounts_of(self, owner: str, program_id: str) -> list[tuple[str, str, str]]:
        """(account, mint, raw amount) of `owner`'s open token accounts of `program_id` as of the head:
        each account's latest `postTokenBalances` entry in chain order (an account a transaction
        had before but not after was closed). Entries without `programId` count as SPL Token."""
        latest: dict[str, Mapping[str, Any] | None] = {}
        for tx in sorted(self._by_sig.values(), key=lambda t: t.order):
            meta = tx.result.get("meta") or {}
            post = {tx.keys[b["accountIndex"]]: b for b in meta.get("postTokenBalances") or ()}
            closed = {tx.keys[b["accountIndex"]] for b in meta.get("preTokenBalances") or ()} - post.keys()
            latest.update(dict.fromkeys(closed), **post)
        return sorted(
            (account, b["mint"], b["uiTokenAmount"]["amount"])
            for account, b in latest.items()
            if b is not None and b.get("owner") == owner and b.get("programId", SPL_TOKEN) == program_id
        )
