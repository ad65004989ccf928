"""Solana JSON-RPC over HTTP: rate-capped, retried, errors typed.

Single calls go through solana-py's `AsyncClient.send_rpc_request`, which returns the raw
result through a pydantic envelope (the typed helpers parse errors with solders, which
panics on an error without `data` and returns a bare int for unknown codes; and
`get_transaction` would ask for legacy transactions only). `getTransaction` goes out as
batched JSON-RPC over httpx, which solana-py cannot express. Every sub-request of a batch
counts against the rate cap; transport errors, 429 and 5xx are retried with exponential
backoff and jitter; a JSON-RPC error becomes `ExternalServiceError` with the RPC message
in `internal`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import httpx
import httpx2
import orjson
import pydantic
import structlog
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment
from solana.rpc.jsonrpc import JsonRpcRequest, SolanaJsonRpcError

from core.errors import ExternalServiceError
from core.settings import SolanaSettings
from streams.retry import Retrier, Transient, retry_after_seconds

__all__ = ["SignatureInfo", "RateCap", "RpcClient", "RpcCallError", "SERVICE"]

SERVICE = "solana-rpc"
log = structlog.get_logger()

# Codes a healthy node returns while it catches up: worth another try, not a bug.
_TRANSIENT_CODES = frozenset({-32005, -32014, -32016})
# getBlockTime: block not (yet) available, slot skipped, skipped in long-term storage.
_NO_BLOCK_TIME_CODES = frozenset({-32004, -32007, -32009})


@dataclass(frozen=True, slots=True)
class SignatureInfo:
    """One `getSignaturesForAddress` entry; `err` is the raw error object (None = succeeded)."""

    signature: str
    slot: int
    err: Any = None
    block_time: int | None = None


class RateCap:
    """At most `capacity` requests in any `window_s`: a token bucket whose tokens each return
    `window_s` after they were spent (a bucket refilling continuously lets 2x through after idling).

    `clock` and `sleep` are injectable so the arithmetic can be tested without waiting.
    """

    def __init__(
        self,
        capacity: int,
        window_s: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if capacity <= 0 or window_s <= 0:
            raise ValueError("capacity and window_s must be positive")
        self.capacity, self.window_s = capacity, window_s
        self._clock, self._sleep = clock, sleep
        self._spent: deque[tuple[float, int]] = deque()  # (when, how many), oldest first
        self._in_window = 0
        self._lock = asyncio.Lock()  # first come, first served

    def delay(self, n: int = 1) -> float:
        """Seconds until `n` tokens are free (0 if they are free now)."""
        if not 0 < n <= self.capacity:
            raise ValueError(f"cannot take {n} tokens from a bucket of {self.capacity}")
        now = self._clock()
        self._expire(now)
        excess = self._in_window + n - self.capacity
        for when, count in self._spent:  # the oldest spends come back first
            if excess <= 0:
                break
            excess -= count
            if excess <= 0:
                return max(0.0, when + self.window_s - now)
        return 0.0

    async def acquire(self, n: int = 1) -> None:
        async with self._lock:
            while (wait := self.delay(n)) > 0:
                await self._sleep(wait)
            self._spent.append((self._clock(), n))
            self._in_window += n

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] + self.window_s <= now:
            self._in_window -= self._spent.popleft()[1]


class RpcCallError(ExternalServiceError):
    """The node answered with a JSON-RPC error; `code` is its error code."""

    def __init__(self, method: str, code: int, message: str) -> None:
        self.code = code
        super().__init__(SERVICE, internal=f"{method}: RPC error {code}: {message}")


class RpcClient:
    """The HTTP JSON-RPC calls the sources need. Use as `async with RpcClient(...) as rpc:`."""

    def __init__(
        self,
        http_url: str,
        *,
        commitment: str = "confirmed",
        max_requests_per_10s: int = 100,
        batch_size: int = 50,
        max_concurrency: int = 4,
        max_attempts: int = 4,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 8.0,
        timeout_s: float = 30.0,
        max_supported_transaction_version: int = 1,
        rate_cap: RateCap | None = None,
    ) -> None:
        self.url = http_url
        self.commitment = commitment
        self.rate = rate_cap or RateCap(max_requests_per_10s)
        self._batch_size = max(1, min(batch_size, self.rate.capacity))
        self._concurrency = asyncio.Semaphore(max_concurrency)
        self._max_version = max_supported_transaction_version
        self._retrier = Retrier(SERVICE, self.rate, attempts=max_attempts, backoff_initial_s=backoff_initial_s,
                                backoff_max_s=backoff_max_s, log_event="rpc_retry")
        self._ids = itertools.count(1)
        # solana-py retries transport errors itself by default; tenacity owns that here.
        self._solana = AsyncClient(http_url, Commitment(commitment), timeout=timeout_s, max_transport_retries=0)
        self._http = httpx.AsyncClient(timeout=timeout_s, headers={"Content-Type": "application/json"})

    @classmethod
    def from_settings(cls, settings: SolanaSettings, **overrides: Any) -> Self:
        options: dict[str, Any] = {
            "commitment": settings.commitment,
            "max_requests_per_10s": settings.max_requests_per_10s,
        }
        return cls(settings.rpc_http_url, **(options | overrides))

    async def __aenter__(self) -> Self:
        return self  # nothing to open: both HTTP clients connect lazily

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._solana.close()
        await self._http.aclose()

    async def get_transactions(
        self, signatures: Iterable[str], encoding: str = "json"
    ) -> dict[str, Mapping[str, Any] | None]:
        """signature -> `getTransaction` result (None: unknown to the node), in input order."""
        unique = list(dict.fromkeys(signatures))
        chunks = [unique[i : i + self._batch_size] for i in range(0, len(unique), self._batch_size)]
        found: dict[str, Mapping[str, Any] | None] = {}
        for part in await asyncio.gather(*(self._get_batch(chunk, encoding) for chunk in chunks)):
            found.update(part)
        return {sig: found.get(sig) for sig in unique}

    async def get_signatures_for_address(
        self, address: str, before: str | None = None, until: str | None = None, limit: int = 1000
    ) -> list[SignatureInfo]:
        """Newest first; `before` and `until` are exclusive bounds."""
        config = {"limit": limit, "before": before, "until": until, "commitment": self.commitment}
        rows = await self._single("getSignaturesForAddress", [address, _without_none(config)])
        try:
            return [
                SignatureInfo(row["signature"], int(row["slot"]), row.get("err"), row.get("blockTime"))
                for row in rows
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ExternalServiceError(SERVICE, internal=f"getSignaturesForAddress: bad result: {exc!r}") from None

    async def get_token_accounts_by_owner(self, owner: str, program_id: str) -> tuple[int, list[tuple[str, str]]]:
        """(the node's slot, [(token account, mint)]) of `owner`'s accounts under `program_id`."""
        config = {"encoding": "jsonParsed", "commitment": self.commitment}
        found = await self._single("getTokenAccountsByOwner", [owner, {"programId": program_id}, config])
        try:
            return int(found["context"]["slot"]), [
                (row["pubkey"], row["account"]["data"]["parsed"]["info"]["mint"]) for row in found["value"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ExternalServiceError(SERVICE, internal=f"getTokenAccountsByOwner: bad result: {exc!r}") from None

    async def get_block_time(self, slot: int) -> int | None:
        """Estimated production time of `slot`; None if the node has no block (or time) for it."""
        try:
            value = await self._single("getBlockTime", [slot])
        except RpcCallError as exc:
            if exc.code in _NO_BLOCK_TIME_CODES:
                return None
            raise
        return value if isinstance(value, int) else None

    async def get_slot(self) -> int:
        value = await self._single("getSlot", [{"commitment": self.commitment}])
        if not isinstance(value, int):
            raise ExternalServiceError(SERVICE, internal=f"getSlot: not an integer: {value!r}")
        return value

    async def _single(self, method: str, params: list[Any]) -> Any:
        async def attempt() -> Any:
            request = JsonRpcRequest(id=next(self._ids), method=method, params=params)
            try:
                return await self._solana.send_rpc_request(request, Any)
            except SolanaRpcException as exc:
                raise _from_http(exc.__cause__, method) from exc
            except SolanaJsonRpcError as exc:
                raise _from_rpc_error(method, exc.code, exc.message) from exc
            except pydantic.ValidationError as exc:
                raise ExternalServiceError(SERVICE, internal=f"{method}: bad envelope: {exc}") from exc

        return await self._retry(method, 1, attempt)

    async def _get_batch(self, chunk: Sequence[str], encoding: str) -> dict[str, Mapping[str, Any] | None]:
        config = {
            "encoding": encoding,
            "commitment": self.commitment,
            "maxSupportedTransactionVersion": self._max_version,
        }
        ids = {next(self._ids): sig for sig in chunk}
        body = orjson.dumps(
            [{"jsonrpc": "2.0", "id": i, "method": "getTransaction", "params": [sig, config]} for i, sig in ids.items()]
        )

        async def attempt() -> dict[str, Mapping[str, Any] | None]:
            try:
                response = await self._http.post(self.url, content=body)
            except httpx.TransportError as exc:
                raise Transient(f"getTransaction: {type(exc).__name__}: {exc}") from exc
            _check_status(response.status_code, response.headers.get("retry-after"), "getTransaction", response.text)
            return _read_batch(response.content, ids)

        async with self._concurrency:
            return await self._retry("getTransaction", len(chunk), attempt)

    @property
    def requests(self) -> int:
        """Sub-requests sent, retries included (batched ones counted one by one)."""
        return self._retrier.sent

    async def _retry(self, method: str, cost: int, attempt: Callable[[], Awaitable[Any]]) -> Any:
        return await self._retrier.call(method, cost, attempt)


def _without_none(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if v is not None}


def _check_status(status: int, retry_after: str | None, method: str, text: str) -> None:
    if status == 429 or status >= 500:
        raise Transient(f"{method}: HTTP {status}", retry_after_seconds(retry_after))
    if status >= 400:
        raise ExternalServiceError(SERVICE, internal=f"{method}: HTTP {status}: {text[:500]}")


def _from_http(cause: BaseException | None, method: str) -> Exception:
    if isinstance(cause, httpx2.HTTPStatusError):
        response = cause.response
        try:
            _check_status(response.status_code, response.headers.get("retry-after"), method, response.text)
        except (Transient, ExternalServiceError) as exc:
            return exc
    return Transient(f"{method}: {type(cause).__name__}: {cause}")


def _from_rpc_error(method: str, code: int, message: str) -> Exception:
    if code in _TRANSIENT_CODES or code == 429:
        return Transient(f"{method}: RPC error {code}: {message}")
    return RpcCallError(method, code, message)


def _read_batch(content: bytes, ids: Mapping[int, str]) -> dict[str, Mapping[str, Any] | None]:
    try:
        replies = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise ExternalServiceError(SERVICE, internal=f"getTransaction: invalid JSON: {exc}") from None
    if isinstance(replies, Mapping) and isinstance(replies.get("error"), Mapping):  # the whole batch refused
        raise _from_rpc_error("getTransaction", replies["error"].get("code", 0), str(replies["error"].get("message")))
    if not isinstance(replies, list):
        raise ExternalServiceError(SERVICE, internal="getTransaction: batch reply is not a list")
    out: dict[str, Mapping[str, Any] | None] = {}
    for reply in replies:
        sig = ids.get(reply.get("id")) if isinstance(reply, Mapping) else None
        if sig is None:
            continue
        if isinstance(error := reply.get("error"), Mapping):
            raise _from_rpc_error("getTransaction", error.get("code", 0), f"{error.get('message')} ({sig})")
        result = reply.get("result")
        out[sig] = result if isinstance(result, Mapping) else None
    if len(out) != len(ids):
        raise Transient(f"getTransaction: {len(ids) - len(out)} replies missing from the batch")
    return out
