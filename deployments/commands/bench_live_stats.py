"""What `oof bench live` measures, and the arithmetic of it: no Ray, no sockets, no clock of its own.

A `LatencyBook` is told, with wall-clock times (`time.time()`, the same clock in every local
process), when each transaction was due and published and in which slot, when the sink
acknowledged each write (the signatures and the moment upserts it held), and — with
PostgreSQL — when each `oof_moments` NOTIFY arrived. From that:

- **transaction latency**: publish → the sink's write holding its row ended (committed). The
  ingest stores rows as soon as it parsed them, with the next batch it cuts — possibly
  before their slot is run: this is "stored", not "detected";
- **moment latency**: for each moment upsert, from the publish of its *trigger* — the first
  transaction of the first slot whose block time reaches the moment's `updated_at` (event
  time only moves with slots, and the moment cannot be known before that slot is
  published; counting from the slot's first transaction is the pessimistic choice) — to
  the write that held it (`sink`), and to its NOTIFY (`notify`: what an SSE client sees);
  a NOTIFY is matched to the write of that moment nearest in time. The sink latency is also
  split where the trigger's slot closed (`moment_split`).

Only transactions (and triggers) *due* inside the measured window count: warm-up and
cool-down are published but excluded. Percentiles are nearest-rank.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["LatencyBook", "Summary", "percentile", "summarize", "parse_rates"]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of `values` (q in [0, 1]): the smallest value with at least q of them at
    or below it. NaN for no values."""
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be in [0, 1]")
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class Summary:
    count: int
    p50: float
    p95: float
    p99: float
    max: float

    def line(self, unit: float = 1000.0, suffix: str = "ms") -> str:
        if not self.count:
            return "no samples"
        return (f"p50 {self.p50 * unit:,.0f} {suffix}, p95 {self.p95 * unit:,.0f} {suffix}, "
                f"p99 {self.p99 * unit:,.0f} {suffix}, max {self.max * unit:,.0f} {suffix} ({self.count:,} samples)")


def summarize(values: Sequence[float]) -> Summary:
    ordered = sorted(values)
    if not ordered:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    return Summary(len(ordered), percentile(ordered, 0.5), percentile(ordered, 0.95), percentile(ordered, 0.99),
                   ordered[-1])


def parse_rates(text: str) -> list[float]:
    """`--rate 200,500,1000` → [200.0, 500.0, 1000.0]; ValueError unless every rate is a number > 0."""
    rates = [float(part) for part in text.split(",") if part.strip()]
    if not rates or any(not math.isfinite(r) or r <= 0 for r in rates):
        raise ValueError(f"rates must be numbers > 0, got {text!r}")
    return rates


@dataclass
class LatencyBook:
    """Everything one measured phase saw; `window` is [start, end) of due times that count."""

    window: tuple[float, float]
    due: dict[str, float] = field(default_factory=dict)  # signature -> when it was scheduled
    published: dict[str, float] = field(default_factory=dict)  # signature -> when publish() was called
    acked: dict[str, float] = field(default_factory=dict)  # signature -> end of the first write holding it
    slot_times: list[int] = field(default_factory=list)  # block time per slot, publish order (non-decreasing)
    slot_first: list[float] = field(default_factory=list)  # publish time of each slot's first transaction
    slot_due: list[float] = field(default_factory=list)  # due time of each slot's first transaction
    moment_writes: list[tuple[float, str, int]] = field(default_factory=list)  # (write end, id, updated_at)
    notifies: list[tuple[float, str]] = field(default_factory=list)  # (arrival, moment id)

    def in_window(self, due: float) -> bool:
        return self.window[0] <= due < self.window[1]

    def publish(self, signature: str, due: float, at: float, block_time: int, new_slot: bool) -> None:
        self.due[signature], self.published[signature] = due, at
        if new_slot:
            self.slot_times.append(block_time)
            self.slot_first.append(at)
            self.slot_due.append(due)

    def ack(self, acks: Iterable[tuple[float, Sequence[str], Sequence[tuple[str, int]]]]) -> None:
        for at, signatures, moments in acks:
            for sig in signatures:
                self.acked.setdefault(sig, at)
            self.moment_writes += [(at, mid, updated_at) for mid, updated_at in moments]

    def notify(self, at: float, moment_id: str) -> None:
        self.notifies.append((at, moment_id))

    @property
    def measured(self) -> list[str]:
        return [sig for sig, due in self.due.items() if self.in_window(due)]

    def unacked(self) -> int:
        return sum(1 for sig in self.measured if sig not in self.acked)

    def tx_latencies(self) -> list[float]:
        return [self.acked[s] - self.published[s] for s in self.measured if s in self.acked]

    def publish_lag(self) -> list[float]:
        """How late publish() was called against the schedule (the generator or the node falling behind)."""
        return [self.published[s] - self.due[s] for s in self.measured]

    def achieved_rate(self) -> float:
        """Measured transactions per second of the window — or of the time publishing them really took."""
        last = max((self.published[s] for s in self.measured), default=self.window[0])
        span = max(self.window[1] - self.window[0], last - self.window[0])
        return len(self.measured) / span if span > 0 else 0.0

    def trigger(self, updated_at: int) -> tuple[float, float] | None:
        """(publish time, due time) of the first transaction of the first slot with block time >= updated_at."""
        i = bisect.bisect_left(self.slot_times, updated_at)
        return (self.slot_first[i], self.slot_due[i]) if i < len(self.slot_times) else None

    def moment_sink_latencies(self) -> list[float]:
        out = []
        for at, _, updated_at in self.moment_writes:
            found = self.trigger(updated_at)
            if found is not None and self.in_window(found[1]):
                out.append(at - found[0])
        return out

    def moment_split(self) -> tuple[list[float], list[float]]:
        """Each counted moment write's latency in two: its trigger slot's first publish → that slot closed
        (the next slot's first transaction published: no pipeline can run a slot before it knows the slot
        is complete), and slot closed → written (the pipeline's own share)."""
        waits, rest = [], []
        for at, _, updated_at in self.moment_writes:
            i = bisect.bisect_left(self.slot_times, updated_at)
            if i + 1 < len(self.slot_times) and self.in_window(self.slot_due[i]):
                waits.append(self.slot_first[i + 1] - self.slot_first[i])
                rest.append(at - self.slot_first[i + 1])
        return waits, rest

    def moment_notify_latencies(self) -> tuple[list[float], list[float]]:
        """(trigger → NOTIFY latencies, NOTIFY − matched write end offsets)."""
        writes: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for at, mid, updated_at in self.moment_writes:
            writes[mid].append((at, updated_at))
        latencies, offsets = [], []
        for at, mid in self.notifies:
            candidates = writes.get(mid)
            if not candidates:
                continue
            write_at, updated_at = min(candidates, key=lambda c: abs(c[0] - at))
            found = self.trigger(updated_at)
            if found is not None and self.in_window(found[1]):
                latencies.append(at - found[0])
                offsets.append(at - write_at)
        return latencies, offsets
