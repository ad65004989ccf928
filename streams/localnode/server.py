"""`LocalRpcServer`: a Solana JSON-RPC node on 127.0.0.1, HTTP and websocket on one port (tests, `oof bench live`).

    async with LocalRpcServer(load_results(MAINNET / "transactions.jsonl")) as node:
        rpc = RpcClient(node.http_url); source = HeliusSource(node.ws_url, [wallet], rpc)
        await node.wait_for_subscriptions(1)
        signature = await node.publish(result)       # stored one slot above the head, notified
        await node.drop_connections()                # every websocket aborted mid-stream

Besides the methods (see `methods.py`) it has knobs for the unhappy paths: `accepting`
(refuse websocket upgrades), `fail_http(n, status)`, `http_delay_s`, `send_raw(frame)`,
and counters: `requests` (per method, each batched sub-request counted), `http_posts`,
`ws_connects`.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import orjson
from aiohttp import WSMsgType, web

from streams.localnode.ledger import Ledger
from streams.localnode.methods import RpcFault, Subscription, call_http, error_reply, parse_subscription

__all__ = ["LocalRpcServer"]

_UNSUBSCRIBE = {"transactionUnsubscribe", "logsUnsubscribe", "slotUnsubscribe"}


@dataclass(eq=False)
class _Client:
    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None
    subs: dict[int, Subscription] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # replies and notifications stay ordered

    async def send(self, message: Any) -> None:
        text = message if isinstance(message, str) else orjson.dumps(message).decode()
        async with self.lock:
            if not self.ws.closed:
                try:
                    await self.ws.send_str(text)
                except ConnectionError:
                    pass  # the client is going away; its handler forgets it


class LocalRpcServer:
    """Serves `transactions` (getTransaction results) until the `async with` block ends."""

    def __init__(self, transactions: Iterable[Mapping[str, Any]] = (), *, max_message_bytes: int = 64 * 2**20) -> None:
        self.ledger = Ledger(transactions)
        self.accepting = True
        self.http_delay_s = 0.0
        self.requests: Counter[str] = Counter()
        self.http_posts = 0
        self.ws_connects = 0
        self._max_message_bytes = max_message_bytes
        self._failures: list[tuple[int, str | None]] = []
        self._clients: set[_Client] = set()
        self._sub_ids = itertools.count(4_000_000_000_001)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(client_max_size=self._max_message_bytes)
        app.router.add_route("*", "/", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # the kernel picks a free port
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        await self.drop_connections()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- control API ---------------------------------------------------------------------

    async def publish(self, result: Mapping[str, Any], *, slot: int | None = None, copy_result: bool = True) -> str:
        """Append a transaction (at `slot`, default one above the head) and notify subscribers.
        `copy_result=False`: the ledger keeps `result` itself (see `Ledger.add`)."""
        tx = self.ledger.add(result, slot=slot, copy_result=copy_result)
        for client in list(self._clients):
            for sub in list(client.subs.values()):
                if sub.kind == "slot":
                    await client.send(sub.slot_notification(tx.slot))
                elif sub.wants(tx):
                    await client.send(sub.notification(tx))
        return tx.signature

    async def advance_slot(self, slots: int = 1) -> int:
        """Move the head without transactions (slot subscribers hear of it)."""
        self.ledger.head += slots
        for client in list(self._clients):
            for sub in [s for s in client.subs.values() if s.kind == "slot"]:
                await client.send(sub.slot_notification(self.ledger.head))
        return self.ledger.head

    async def drop_connections(self) -> int:
        """Abort every websocket (no close frame, like a network cut); returns how many."""
        clients, self._clients = list(self._clients), set()
        for client in clients:
            client.subs.clear()
            if client.transport is not None:
                client.transport.abort()
        await asyncio.sleep(0)
        return len(clients)

    async def send_raw(self, frame: str | bytes) -> None:
        """Send `frame` verbatim to every websocket (malformed input, unknown methods)."""
        for client in list(self._clients):
            if isinstance(frame, bytes):
                async with client.lock:
                    await client.ws.send_bytes(frame)
            else:
                await client.send(frame)

    def fail_http(self, count: int, status: int = 429, retry_after: str | None = None) -> None:
        """The next `count` HTTP posts get `status` instead of an answer."""
        self._failures.extend([(status, retry_after)] * count)

    def subscriptions(self, kind: str | None = None) -> int:
        return sum(1 for c in self._clients for s in c.subs.values() if kind is None or s.kind == kind)

    async def wait_for_subscriptions(self, count: int, kind: str | None = None, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while self.subscriptions(kind) < count:
                await asyncio.sleep(0.005)

    # -- transport -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        if request.method == "POST":
            return await self._http(request)
        return web.Response(status=405)

    async def _http(self, request: web.Request) -> web.Response:
        self.http_posts += 1
        if self.http_delay_s:
            await asyncio.sleep(self.http_delay_s)
        if self._failures:
            status, retry_after = self._failures.pop(0)
            headers = {"Retry-After": retry_after} if retry_after else {}
            return web.Response(status=status, text="injected failure", headers=headers)
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _json(error_reply(None, -32700, "Parse error"))
        if isinstance(body, list):
            if not body:
                return _json(error_reply(None, -32600, "Invalid request"))
            return _json([self._http_call(item) for item in body])
        return _json(self._http_call(body))

    def _http_call(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, Mapping) or not isinstance(request.get("method"), str):
            return error_reply(None, -32600, "Invalid request")
        request_id, method = request.get("id"), request["method"]
        self.requests[method] += 1
        params = request.get("params") or []
        try:
            return {"jsonrpc": "2.0", "result": call_http(self.ledger, method, params), "id": request_id}
        except RpcFault as fault:
            return error_reply(request_id, fault.code, fault.message)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if not self.accepting:
            return web.Response(status=503, text="not accepting websocket connections")
        ws = web.WebSocketResponse(max_msg_size=self._max_message_bytes)
        await ws.prepare(request)
        client = _Client(ws, request.transport)
        self._clients.add(client)
        self.ws_connects += 1
        try:
            async for message in ws:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self._ws_message(client, message.data)
        finally:
            self._clients.discard(client)
            client.subs.clear()
        return ws

    async def _ws_message(self, client: _Client, data: str | bytes) -> None:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            await client.send(error_reply(None, -32700, "Parse error"))
            return
        for request in body if isinstance(body, list) else [body]:
            if not isinstance(request, Mapping) or not isinstance(request.get("method"), str):
                await client.send(error_reply(None, -32600, "Invalid request"))
                continue
            request_id, method, params = request.get("id"), request["method"], request.get("params")
            self.requests[method] += 1
            async with client.lock:  # registered and confirmed before any notification for it
                reply = self._ws_call(client, request_id, method, params)
                await client.ws.send_str(orjson.dumps(reply).decode())

    def _ws_call(self, client: _Client, request_id: Any, method: str, params: Any) -> dict[str, Any]:
        if method in _UNSUBSCRIBE:
            sub_id = params[0] if isinstance(params, list) and params else None
            removed = isinstance(sub_id, int) and client.subs.pop(sub_id, None) is not None
            return {"jsonrpc": "2.0", "result": removed, "id": request_id}
        try:
            sub = parse_subscription(next(self._sub_ids), method, params)
        except RpcFault as fault:
            return error_reply(request_id, fault.code, fault.message)
        client.subs[sub.id] = sub
        return {"jsonrpc": "2.0", "result": sub.id, "id": request_id}


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")
