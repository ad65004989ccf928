"""Pure batching and routing helpers: who gets which view, trade, history and tick."""

from __future__ import annotations

from decimal import Decimal

from actors.batching import Router, SignatureWindow, WatchTracker, plan_batch, reference_key, view_mints
from actors.protocol import SlotRun
from core.mints import SOL_MINT, USDC_MINT
from core.models import ParsedTransaction, Side, TradeEvent
from core.routing import shard_for

TOK, OTHER = "Tok1111111111111111111111111111111111111111", "Oth1111111111111111111111111111111111111111"


def _view(wallet: str, sig: str, slot: int, *, mint: str = TOK, failed: bool = False,
          flows: dict[str, Decimal] | None = None) -> ParsedTransaction:
    trade = TradeEvent(sig, slot, 100, 0, wallet, Side.BUY, mint, Decimal(1), USDC_MINT, Decimal(2), Decimal(2),
                       None, 5000)
    return ParsedTransaction(sig, slot, 100, wallet, (wallet,), failed, 5000, None, flows or {}, (trade,))


def test_router_is_the_stable_digest_memoised() -> None:
    router = Router(5, 3)
    for name in ("alice", "bob", TOK):
        assert router.shard(name) == shard_for(name, 5) == router.shard(name)
        assert router.owner(name) == shard_for(name, 3)


def test_signature_window_forgets_the_oldest() -> None:
    window = SignatureWindow(size=2)
    assert window.fresh(["a", "b", "a"]) == ["a", "b"]
    assert window.fresh(["c", "b"]) == ["c"]  # b still remembered; a falls out
    assert window.fresh(["a"]) == ["a"]


def test_watch_tracker_is_a_superset_and_ignores_older_reports() -> None:
    tracker = WatchTracker(1)
    tracker.note(0, 1, {"x"})
    tracker.note(0, 2, {"y"})
    assert tracker.candidates(0, {"z"}) == {"x", "y", "z"}
    tracker.report(0, 1, frozenset({"x", "w"}))
    assert tracker.candidates(0, set()) == {"x", "w", "y"}  # batch 2 not reported yet
    tracker.report(0, 1, frozenset())  # a replayed, older report changes nothing
    assert tracker.candidates(0, set()) == {"x", "w", "y"}
    tracker.report(0, 2, None)  # unchanged subscriptions
    assert tracker.candidates(0, set()) == {"x", "w"}


def test_plan_routes_views_trades_histories_and_candidates() -> None:
    router, tracker = Router(3, 2), WatchTracker(3)
    alice, bob, carol = "alice", "bob", "carol"
    runs = [SlotRun(10, 100, [_view(alice, "s1", 10), _view(carol, "s2", 10, mint=OTHER)]),
            SlotRun(11, 101, [_view(bob, "s3", 11, failed=True)]),
            SlotRun(12, None, [])]
    price, shards = plan_batch(7, runs, router=router, tracked=frozenset({alice, bob}), tracker=tracker,
                               checkpoint=True)
    assert price.slots == ((10, 100), (11, 101), (12, None)) and price.checkpoint
    assert [t.signature for t in price.trades[0]] == ["s1", "s2"]  # untracked wallets' trades are priced too
    assert price.dests[0] == (router.shard(alice), -1)
    assert 1 not in price.trades  # a failed transaction trades nothing
    a, b = router.shard(alice), router.shard(bob)
    assert [v.signature for v in shards[a].views[0]] == ["s1"]
    assert [v.signature for v in shards[b].views[1]] == ["s3"]  # failed views still reach their shard
    assert price.wants[0][a] == frozenset({SOL_MINT, TOK, USDC_MINT})
    assert TOK in price.candidates[a] and OTHER not in price.candidates[a]
    assert all(s.slots == price.slots for s in shards)


def test_view_mints_include_flows_and_sol() -> None:
    view = _view("w", "s", 1, flows={OTHER: Decimal(5)})
    assert view_mints(view) == {SOL_MINT, TOK, USDC_MINT, OTHER}


def test_reference_key_is_what_the_answer_depends_on() -> None:
    assert reference_key(TOK, 100, "w") == f"{TOK}|100|w"
