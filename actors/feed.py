"""`Feed`: the ingest's input side — open the source, and turn what it emits into full results.

Opening: the `SourceSpec` names a recording (every fee payer tracked, like `oof replay`),
an in-memory list, or a live source from `streams.sources.build_source` whose transaction
fetches go through `oof:fetch` and whose cursors are read from the database and written
only with a checkpoint (`cursors`), so a restart never starts past what was checkpointed.
Completing: drop signatures seen recently, fetch signature-only items and, for live
sources, fill in block times (Helius notifications carry none, and event time needs them)
— one `oof:fetch` call each per source batch, block times only for slots not asked before
(a slot's time never changes; a live source emits every notification on its own, so
without that every transaction cost a `getBlockTime` out of the node's request budget).
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import ray
import structlog

from actors.batching import SignatureWindow
from actors.metrics import pipeline_metrics
from actors.sources import ItemsSource, SlotOrderedFile, SourceSpec, fee_payers
from core.external_prices import is_external
from core.models import ParsedTransaction
from core.paths import project_root
from streams.base import Gap, RawTx

__all__ = ["Feed"]

log = structlog.get_logger("oof.ingest")
_BLOCK_TIMES_KEPT = 4096  # slots (~27 min of mainnet): live input is never older than that


class Feed:
    def __init__(self, spec: SourceSpec, batch_size: int, sink: Any, fetch: Any, counts: dict[str, int]) -> None:
        self.spec, self.batch_size, self.sink, self.fetch, self.counts = spec, batch_size, sink, fetch, counts
        self.window = SignatureWindow()
        self.cursors: dict[str, tuple[str, int]] = {}  # live positions not yet checkpointed
        self.source: Any = None
        self._rpc: Any = None
        self._block_times: dict[int, int] = {}  # slot -> block time, the newest `_BLOCK_TIMES_KEPT` slots asked

    @property
    def name(self) -> str:
        spec = self.spec
        if spec.kind == "file" and spec.path:
            return Path(spec.path).name
        if spec.kind == "settings" and spec.solana is not None and not spec.live:
            return spec.solana.replay_path(project_root()).name
        return spec.name

    async def open(self) -> frozenset[str] | None:
        """Build the source; returns the wallets to track (None: every fee payer)."""
        from streams.sources import build_source

        spec = self.spec
        tracked = None if spec.tracked is None else frozenset(spec.tracked)
        if spec.kind == "items":
            items = await spec.items if isinstance(spec.items, ray.ObjectRef) else spec.items
            self.source = ItemsSource(items or [], self.batch_size, spec.parts)
            return tracked
        if spec.kind == "file" or not spec.live:
            path = Path(spec.path) if spec.kind == "file" else spec.solana.replay_path(project_root())  # type: ignore
            entries, payers = await asyncio.to_thread(fee_payers, path)
            self.source = (SlotOrderedFile(path, entries, self.batch_size) if spec.kind == "file"
                           else build_source(spec.solana, batch_size=self.batch_size))  # type: ignore[arg-type]
            return tracked if tracked is not None else frozenset(payers)
        from actors.fetch import FetchingRpc
        from streams.rpc import RpcClient

        solana = spec.solana
        assert solana is not None
        wallets = sorted({*solana.wallets, *(await self.sink.tracked_wallets.remote())})
        self._rpc = RpcClient.from_settings(solana)  # slots and backfill signatures; fetches go to oof:fetch
        followed = await self.sink.followed_token_accounts.remote(wallets)
        self.source = build_source(solana, rpc=FetchingRpc(self._rpc, self.fetch), cursor_get=self._cursor_get,
                                   cursor_set=self._cursor_set, policy=spec.live_policy,
                                   batch_size=min(self.batch_size, 1000), wallets=wallets,
                                   token_accounts=followed, on_follow=self.sink.follow_token_accounts.remote)
        return tracked if tracked is not None else frozenset(wallets)

    async def close(self) -> None:
        if self._rpc is not None:
            await self._rpc.aclose()
            self._rpc = None

    async def _cursor_get(self, wallet: str) -> str | None:
        return await self.sink.cursor.remote(wallet)

    async def _cursor_set(self, wallet: str, signature: str, slot: int) -> None:
        self.cursors[wallet] = (signature, slot)  # stored with the next checkpoint, never ahead of it

    async def complete(self, items: Any) -> list[Any]:
        """What the engine should be offered from one emitted source batch, in order.

        Views of outside prices among the items (an analyze job's market prices) are counted
        apart (`external_prices`): they are not transactions."""
        raws = [i for i in items if isinstance(i, RawTx)]
        others = [i for i in items if not isinstance(i, (RawTx, Gap))]
        for gap in (i for i in items if isinstance(i, Gap)):
            self._gap(gap)
        external = sum(1 for i in others if isinstance(i, ParsedTransaction) and is_external(i.wallet))
        if external:
            self.counts["external_prices"] += external
        if len(raws) + len(others) > external:
            self.counts["tx_in"] += len(raws) + len(others) - external
            pipeline_metrics().tx_in.inc(len(raws) + len(others) - external, tags={"source": self.spec.name})
        return [*(await self._results(raws)), *others]

    async def _results(self, raws: list[RawTx]) -> list[Any]:
        by_sig = {r.signature: r for r in raws}
        fresh = self.window.fresh(by_sig)
        self.counts["duplicates"] += len(raws) - len(fresh)
        missing = [s for s in fresh if by_sig[s].result is None]
        fetched = await self.fetch.transactions.remote(missing) if missing else {}
        self.counts["fetched"] += len(missing)
        results = []
        for sig in fresh:
            result = by_sig[sig].result if by_sig[sig].result is not None else fetched.get(sig)
            if result is None:
                self.counts["not_found"] += 1
                continue
            results.append(result)
        if not (self.spec.live or self.spec.fetch_block_times):
            return results  # a recording is replayed as recorded
        known = self._block_times
        untimed = sorted({r["slot"] for r in results if r.get("blockTime") is None and isinstance(r.get("slot"), int)}
                         - known.keys())
        if untimed:
            times = await self.fetch.block_times.remote(untimed)
            known.update((slot, t) for slot, t in times.items() if t is not None)  # None: ask again next time
            for slot in list(itertools.islice(known, max(0, len(known) - _BLOCK_TIMES_KEPT))):
                del known[slot]
        if any(r.get("blockTime") is None for r in results):
            results = [r if r.get("blockTime") is not None else {**r, "blockTime": known.get(r.get("slot"))}
                       for r in results]
        return results

    def _gap(self, gap: Gap) -> None:
        self.counts["gaps"] += 1
        lag = (gap.first_slot - gap.last_slot) if gap.first_slot is not None and gap.last_slot is not None else 0
        pipeline_metrics().backfill_lag.set(lag, tags={"source": self.spec.name})
        pipeline_metrics().reconnects.inc(tags={"source": self.spec.name})
        log.info("source_gap", last_slot=gap.last_slot, first_slot=gap.first_slot, wallets=len(gap.wallets))
