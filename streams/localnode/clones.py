"""`CloneStream`: an endless supply of fresh, well-formed transactions cloned from a recording.

Load for the local node (`oof bench live`): every clone is a recorded `getTransaction`
result (real JSON, so the parser, the engine and the sink do their real work) with

- a fresh signature (unique for the stream's `seed`);
- its wallets renamed for one of `lanes` copies of the recording's world: every fee payer
  of the recording gets one address per lane, so `lanes` times as many wallets trade the
  same mints along the same price paths (shards see many wallets, every mint sees
  `lanes` times the trades);
- its event time: the recording's own block times, moved on by one recording span (plus
  `gap_s`) per pass through it, so windows close and daily timers fire as they do when the
  recording is replayed.

Clones come out in recording order, each row once per lane in turn. The caller decides
slot and block time when it publishes (`LocalRpcServer.publish(..., slot=)`); `event_time`
is what the recording says the clone's time is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import base58
import orjson
from solders.signature import Signature

from streams.codec import tx_account_keys, tx_signature

__all__ = ["Clone", "CloneStream"]


@dataclass(frozen=True, slots=True)
class Clone:
    result: dict[str, Any]  # a fresh getTransaction result; the caller may own and change it
    signature: str
    event_time: int  # unix seconds the recording gives this clone


class CloneStream:
    """Clones of `results` (getTransaction results with `blockTime`), row by row, lane by lane."""

    def __init__(self, results: Sequence[Mapping[str, Any]], *, lanes: int = 1, seed: int | str = 0,
                 gap_s: int = 86_400) -> None:
        if lanes < 1:
            raise ValueError("lanes must be >= 1")
        rows = [r for r in results if isinstance(r.get("blockTime"), int)]
        if not rows:
            raise ValueError("the recording has no transaction with a blockTime")
        rows.sort(key=lambda r: (r["blockTime"], r.get("slot") or 0))
        self.lanes, self.seed = lanes, seed
        payers = sorted({tx_account_keys(r)[0] for r in rows})
        self.lane_wallets = [{p: _lane_address(p, lane) for p in payers} for lane in range(lanes)]
        self.wallets = [w for names in self.lane_wallets for w in names.values()]
        start, end = rows[0]["blockTime"], rows[-1]["blockTime"]
        self.period_s = end - start + gap_s
        self._offsets = [r["blockTime"] - start for r in rows]
        self._start = start
        # (row, lane) -> JSON text with that lane's names and a placeholder signature
        self._texts: list[list[str]] = []
        for row in rows:
            text = orjson.dumps(row).decode().replace(tx_signature(row), _PLACEHOLDER)
            self._texts.append([_rename(text, names) for names in self.lane_wallets])
        self.count = 0  # clones made so far

    @property
    def rows(self) -> int:
        return len(self._texts)

    def next(self) -> Clone:
        i = self.count
        self.count += 1
        lane, position = i % self.lanes, i // self.lanes
        cycle, row = divmod(position, len(self._texts))
        digest = hashlib.blake2b(f"{self.seed}:{i}".encode(), digest_size=64).digest()
        signature = str(Signature(digest))
        result = orjson.loads(self._texts[row][lane].replace(_PLACEHOLDER, signature, 1))
        event_time = self._start + cycle * self.period_s + self._offsets[row]
        return Clone(result, signature, event_time)


_PLACEHOLDER = "CLONE-SIGNATURE"


def _lane_address(wallet: str, lane: int) -> str:
    return base58.b58encode(hashlib.blake2b(f"clone-lane:{lane}:{wallet}".encode(), digest_size=32).digest()).decode()


def _rename(text: str, names: Mapping[str, str]) -> str:
    for old, new in names.items():
        text = text.replace(old, new)
    return text
