"""`CloneStream`: fresh, parseable transactions from a recording — new signatures, per-lane wallets, moving time."""

from __future__ import annotations

from core.paths import project_root
from core.parse import parse_transaction
from streams.codec import tx_account_keys, tx_signature
from streams.localnode import load_results
from streams.localnode.clones import CloneStream

DEMO = project_root() / "configs" / "recordings" / "demo.jsonl"


def test_clones_are_fresh_renamed_per_lane_and_move_on_in_time() -> None:
    results = load_results(DEMO)
    payers = {tx_account_keys(r)[0] for r in results}
    stream = CloneStream(results, lanes=3, seed="t")
    assert len(stream.wallets) == 3 * len(payers) and not set(stream.wallets) & payers
    one_pass = [stream.next() for _ in range(3 * stream.rows)]
    second = stream.next()
    signatures = [c.signature for c in one_pass]
    assert len(set(signatures)) == len(signatures)
    assert all(tx_signature(c.result) == c.signature for c in one_pass)
    times = [c.event_time for c in one_pass]
    assert times == sorted(times) and second.event_time == one_pass[0].event_time + stream.period_s
    for lane in range(3):  # row 0 of each lane: the same transaction, that lane's fee payer
        clone, original = one_pass[lane], results[0]
        payer = tx_account_keys(clone.result)[0]
        assert payer == stream.lane_wallets[lane][tx_account_keys(original)[0]]
        parsed = parse_transaction(clone.result)
        assert parsed.wallet == payer and parsed.failed == (original["meta"]["err"] is not None)
    assert CloneStream(results, lanes=3, seed="t").next().signature == signatures[0]  # deterministic
    assert CloneStream(results, lanes=3, seed="u").next().signature != signatures[0]
