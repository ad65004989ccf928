"""The detector contract: hooks that answer with moment upserts, and what they see.

A detector lives inside one `ShardState` and sees only that shard's wallets. It is told
about three things, each through one hook that returns `list[Moment]` (default `[]`):

- `on_trade(leg)`: one change of a wallet's holdings (`Leg`), after positions applied it;
- `on_tick(ticks)`: the ticks of one watched mint in one slot (`SlotTicks`);
- `on_watermark(wm)`: event time moved; windows and timers due by now fire here.

Plus quiet hooks: `on_seen(wallet, slot, time)` (any transaction of a wallet, failed
ones too), `on_history(history)` (the start of a price subscription) and
`on_reference(answer)` (a BAD_ROUTE reference from the price side). Detectors ask for
prices through `ShardContext.watch(mint)` and give them back with `unwatch(mint)`.

Every detector builds its moments the same way (`build_moment`) with the same `explain`
keys: `rule` (the formula), `inputs` (every number used), `thresholds`, `result`
(`pct`, `usd`, `severity` unrounded) and `state`. Decimals are canonical strings in
`explain` (exact, no exponent, no trailing zeros, so equal values read the same however
they were computed); the moment's own `pct`/`usd_value`/`severity` are rounded half-even
to 8/8/4 places.
"""

from __future__ import annotations

from decimal import Context, Decimal
from enum import StrEnum
from typing import Any, ClassVar, Final

from core._frozen import builder
from core.mints import STABLECOINS
from core.models import Moment, MomentKind, MomentStatus, moment_id
from core.oracle import MintHistory, RefAnswer, RefRequest, SlotTicks
from core.positions import Positions
from core.thresholds import Thresholds
from core.windows import Watermark

__all__ = [
    "LegRole",
    "Leg",
    "ShardContext",
    "Detector",
    "build_moment",
    "make_moment",
    "explain_text",
    "decimal_text",
    "clamp01",
]

ZERO: Final = Decimal(0)
ONE: Final = Decimal(1)
_WIDE: Final = Context(prec=60)
_Q8: Final = Decimal("1E-8")
_Q4: Final = Decimal("1E-4")


class LegRole(StrEnum):
    """What a leg did to the wallet's holdings of `Leg.mint`."""

    BUY = "BUY"  # bought it (a BUY, or the received side of a token→token swap)
    SELL = "SELL"  # sold it (a SELL, or the given side of a token→token swap)
    RECEIVE = "RECEIVE"  # quote received by a SELL, or a transfer in
    SEND = "SEND"  # quote paid for a BUY, or a transfer out


class Leg:
    """One change of a wallet's holdings of `mint`, as the shard applied it."""

    __slots__ = ("wallet", "signature", "ix", "slot", "time", "role", "mint", "amount", "price_usd", "judged",
                 "lot_key", "opened_entry")

    def __init__(
        self,
        wallet: str,
        signature: str,
        ix: int,
        slot: int,
        time: int,
        role: LegRole,
        mint: str,
        amount: Decimal,
        price_usd: Decimal | None,  # USD per unit of `mint`; None = unpriceable
        judged: bool = False,  # the leg BAD_ROUTE judges for this trade
        lot_key: str | None = None,  # BUY: the lot it created
        opened_entry: bool = False,  # BUY: it opened the position's entry (RUG)
    ) -> None:
        self.wallet, self.signature, self.ix, self.slot, self.time = wallet, signature, ix, slot, time
        self.role, self.mint, self.amount, self.price_usd = role, mint, amount, price_usd
        self.judged, self.lot_key, self.opened_entry = judged, lot_key, opened_entry

    def __repr__(self) -> str:
        return (f"Leg({self.role.value} {self.amount} {self.mint[:6]} @ {self.price_usd} by {self.wallet[:6]} "
                f"in {self.signature[:8]}:{self.ix})")


class ShardContext:
    """What a shard's detectors share: positions, the watermark, and price subscriptions.

    `watched` counts subscriptions per mint; the first `watch` of a mint asks for its
    history (`history_requests`), which the composition root answers from the price side
    before the next slot. `prices` holds the latest price of every watched mint.

    `deferred` holds upserts that are cheaper to build once than at every change (S2E's and
    BHD's deepening moments: the moment is a function of its watch, which only changes when
    it is re-emitted): moment id → (detector, watch, status, updated_at, state), the last
    emission winning. `ShardState.take_upserts` builds them (`Detector.materialize`) at the
    end of each slot, or of each batch when the caller coalesces a batch per id anyway.
    """

    __slots__ = ("thresholds", "shard_id", "positions", "watermark", "prices", "watched", "history_requests",
                 "reference_requests", "deferred")

    def __init__(self, thresholds: Thresholds, shard_id: int = 0) -> None:
        self.thresholds = thresholds
        self.shard_id = shard_id
        self.positions = Positions()
        self.watermark = Watermark()
        self.prices: dict[str, Decimal] = {}
        self.watched: dict[str, int] = {}
        self.history_requests: dict[str, None] = {}
        self.reference_requests: list[RefRequest] = []
        self.deferred: dict[str, tuple[Detector, Any, MomentStatus, int, str]] = {}

    def watch(self, mint: str) -> None:
        count = self.watched.get(mint, 0)
        self.watched[mint] = count + 1
        if count == 0:
            self.history_requests[mint] = None

    def unwatch(self, mint: str) -> None:
        count = self.watched[mint] - 1
        if count:
            self.watched[mint] = count
        else:
            del self.watched[mint]
            self.prices.pop(mint, None)

    def request_history(self, mint: str) -> None:
        self.history_requests[mint] = None

    def price(self, mint: str) -> Decimal | None:
        """USD per unit of a watched mint (stablecoins are $1)."""
        return ONE if mint in STABLECOINS else self.prices.get(mint)


class Detector:
    """Base class: every hook answers `[]` unless a detector overrides it."""

    kind: ClassVar[MomentKind]
    roles: ClassVar[frozenset[LegRole]] = frozenset(LegRole)  # the legs `on_trade` wants to see

    def __init__(self, ctx: ShardContext) -> None:
        self.ctx = ctx
        self.th = ctx.thresholds

    def on_seen(self, wallet: str, slot: int, time: int) -> list[Moment]:
        return []

    def on_trade(self, leg: Leg) -> list[Moment]:
        return []

    def on_tick(self, ticks: SlotTicks) -> list[Moment]:
        return []

    def on_history(self, history: MintHistory) -> None:
        return None

    def on_reference(self, answer: RefAnswer) -> None:
        return None

    def on_watermark(self, wm: Watermark) -> list[Moment]:
        return []

    def materialize(self, watch: Any, status: MomentStatus, updated_at: int, state: str) -> Moment:
        """Build a moment this detector deferred (`ShardContext.deferred`)."""
        raise NotImplementedError(f"{type(self).__name__} defers no moments")

    @staticmethod
    def severity(pct: Decimal, usd: Decimal) -> Decimal:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {}

    def load_dict(self, d: dict[str, Any]) -> None:
        return None


def clamp01(x: Decimal) -> Decimal:
    return ZERO if x < 0 else ONE if x > 1 else x


_normalize: Final = _WIDE.normalize
_quantize: Final = _WIDE.quantize


def decimal_text(value: Decimal) -> str:
    """Canonical text of a number: exact, no exponent, no trailing zeros ("3.00" and "3" are one value).

    That is `format(value.normalize(Context(prec=60)), "f")`, computed from `str(value)`
    where that is exact: the fixed-point digits with trailing fractional zeros dropped."""
    text = str(value)
    first = text[1] if text[0] == "-" else text[0]
    if first > "9" or len(text) > 60:  # NaN/Infinity, or more digits than normalising at 60 keeps
        return format(_normalize(value), "f")
    if "E" in text:
        text = format(value, "f")  # the same digits in fixed point
    if text[-1] == "0" and "." in text:
        text = text.rstrip("0")
        if text[-1] == ".":
            text = text[:-1]
    return text


def explain_text(values: dict[str, Any]) -> dict[str, Any]:
    """A flat dict with its Decimals as canonical strings (`decimal_text`)."""
    return {k: decimal_text(v) if v.__class__ is Decimal else v for k, v in values.items()}


_new: Final = object.__new__
_MomentBuilder: Final = builder(Moment)


def build_moment(
    kind: MomentKind,
    *,
    mid: str | None = None,
    wallet: str,
    mint: str,
    sig_ref: str,
    slot_ref: int,
    pct: Decimal,
    usd: Decimal,
    severity: Decimal,
    window: tuple[int, int],
    status: MomentStatus,
    detected_at: int,
    updated_at: int,
    rule: str,
    inputs: dict[str, Any],
    thresholds: dict[str, Any],
    state: str,
) -> Moment:
    """The one way detectors make a `Moment` (deterministic id, rounded figures, explain).

    `mid` is `moment_id(kind, wallet, mint, sig_ref)` when the caller has it cached;
    `thresholds` is already text (`explain_text`), computed once per detector."""
    return make_moment(
        mid or moment_id(kind, wallet, mint, sig_ref), kind, wallet, mint, sig_ref, slot_ref, pct, usd, severity,
        window[0], window[1], status, detected_at, updated_at, rule,
        {k: decimal_text(v) if v.__class__ is Decimal else v for k, v in inputs.items()}, thresholds, state)


def make_moment(
    mid: str, kind: MomentKind, wallet: str, mint: str, sig_ref: str, slot_ref: int, pct: Decimal, usd: Decimal,
    severity: Decimal, start: int, end: int, status: MomentStatus, detected_at: int, updated_at: int, rule: str,
    inputs_text: dict[str, Any], thresholds: dict[str, Any], state: str,
) -> Moment:
    """`build_moment` with positional arguments, the id at hand and `inputs` already text
    (`decimal_text` for every Decimal): the hot detectors' way to the same `Moment`."""
    if usd < ZERO:
        usd = ZERO
    m: Any = _new(_MomentBuilder)  # `Moment(...)` without a frozen __init__ (see core._frozen)
    m.id = mid
    m.kind = kind
    m.wallet = wallet
    m.mint = mint
    m.severity = _quantize(severity, _Q4)
    m.pct = _quantize(pct, _Q8)
    m.usd_value = _quantize(usd, _Q8)
    m.window_start = start
    m.window_end = end
    m.sig_ref = sig_ref
    m.slot_ref = slot_ref
    m.status = status
    m.detected_at = detected_at
    m.updated_at = updated_at
    m.explain = {
        "rule": rule,
        "inputs": inputs_text,
        "thresholds": thresholds.copy(),
        "result": {"pct": decimal_text(pct), "usd": decimal_text(usd), "severity": decimal_text(severity)},
        "state": state,
    }
    m.__class__ = Moment
    return m  # type: ignore[no-any-return]
