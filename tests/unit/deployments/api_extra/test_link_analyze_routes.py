"""The link and analyze routes through the real app: auth, problem bodies, status codes, headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from solders.keypair import Keypair

from deployments.linking import NamedConnections, WalletLinker
from tests.unit.deployments.api.conftest import api_settings, running_api
from tests.unit.deployments.api_extra.conftest import Served

PROBLEM = "application/problem+json"


def sign(key: Keypair, message: str) -> str:
    return str(key.sign_message(message.encode()))


async def post(served: Served, url: str, body: dict[str, Any], *, user: str | None = None) -> httpx.Response:
    headers = served.api.user(user) if user else {}
    return await served.api.client.post(url, json=body, headers=headers)


async def link_wallet(served: Served, user: str, key: Keypair | None = None) -> str:
    key = key or Keypair()
    wallet = str(key.pubkey())
    grant = (await post(served, "/v1/wallets/link/nonce", {"wallet": wallet}, user=user)).json()
    linked = await post(
        served, "/v1/wallets/link",
        {"wallet": wallet, "nonce": grant["nonce"], "signature": sign(key, grant["message"])}, user=user,
    )
    assert linked.status_code == 201, linked.text
    return wallet


async def test_link_a_wallet_and_list_it(served: Served) -> None:
    key = Keypair()
    wallet = str(key.pubkey())

    issued = await post(served, "/v1/wallets/link/nonce", {"wallet": wallet}, user="alice")
    grant = issued.json()
    body = {"wallet": wallet, "nonce": grant["nonce"], "signature": sign(key, grant["message"])}
    linked = await post(served, "/v1/wallets/link", body, user="alice")
    reused = await post(served, "/v1/wallets/link", body, user="alice")
    listed = await served.api.get("/v1/wallets", user="alice")
    other = await served.api.get("/v1/wallets", user="bob")

    assert issued.status_code == 200 and grant["wallet"] == wallet
    assert grant["message"].startswith(f"OOF wants you to link wallet {wallet} to account alice. Nonce: ")
    assert linked.status_code == 201 and linked.json()["wallet"] == wallet
    assert reused.status_code == 409 and reused.headers["content-type"] == PROBLEM
    assert reused.json()["type"] == "https://oof.dev/problems/wallet-link-rejected"
    assert reused.json()["reason"] == "nonce_used"
    assert [w["wallet"] for w in listed.json()["wallets"]] == [wallet]
    assert other.json() == {"wallets": []}


async def test_a_bad_signature_is_a_400_problem(served: Served) -> None:
    key = Keypair()
    wallet = str(key.pubkey())
    grant = (await post(served, "/v1/wallets/link/nonce", {"wallet": wallet}, user="alice")).json()

    refused = await post(
        served, "/v1/wallets/link",
        {"wallet": wallet, "nonce": grant["nonce"], "signature": sign(Keypair(), grant["message"])}, user="alice",
    )

    assert refused.status_code == 400 and refused.json()["reason"] == "signature_invalid"
    assert "request_id" in refused.json()


async def test_an_expired_nonce_with_an_injected_clock(served: Served) -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    clock = [now]
    served.api.app.state.wallet_linker = WalletLinker(
        NamedConnections(served.api.deps, "wallet_links"), clock=lambda: clock[0]
    )
    key = Keypair()
    wallet = str(key.pubkey())
    grant = (await post(served, "/v1/wallets/link/nonce", {"wallet": wallet}, user="alice")).json()
    clock[0] = now + timedelta(minutes=6)

    expired = await post(
        served, "/v1/wallets/link",
        {"wallet": wallet, "nonce": grant["nonce"], "signature": sign(key, grant["message"])}, user="alice",
    )

    assert grant["expires_at"] == "2026-03-01T12:05:00Z"
    assert expired.status_code == 400 and expired.json()["reason"] == "nonce_expired"


async def test_linking_is_for_users_only(served: Served) -> None:
    wallet = str(Keypair().pubkey())
    url = "/v1/wallets/link/nonce"
    body = httpx.Request("POST", "http://x", json={"wallet": wallet}).read()

    anonymous = await served.api.client.post(url, json={"wallet": wallet})
    service = await served.api.client.post(
        url, content=body, headers={**served.api.service("POST", url, body), "content-type": "application/json"}
    )
    invalid = await post(served, url, {"wallet": "not-an-address"}, user="alice")

    assert anonymous.status_code == 401 and service.status_code == 403
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "body.wallet"


async def test_analyze_lifecycle_and_privacy(served: Served) -> None:
    wallet = await link_wallet(served, "alice")

    submitted = await post(served, "/v1/analyze", {"wallets": [wallet], "limit": 100}, user="alice")
    job = submitted.json()
    own = await served.api.get(job["links"]["self"], user="alice")
    foreign = await served.api.get(job["links"]["self"], user="bob")
    missing = await served.api.get("/v1/analyze/01J00000000000000000000000", user="bob")
    service = await served.api.get(job["links"]["self"], service=True)

    assert submitted.status_code == 202, submitted.text
    assert submitted.headers["location"] == f"/v1/analyze/{job['job_id']}"
    assert "analyze" in submitted.headers["ratelimit-policy"]
    assert job["status"] == "queued" and job["wallets"] == [wallet] and job["progress"] == {"limit": 100}
    assert own.status_code == 200 and own.json()["job_id"] == job["job_id"]
    assert service.status_code == 200
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["type"] == missing.json()["type"]


async def test_analyze_needs_linked_wallets_and_respects_the_quota(served: Served) -> None:
    wallet = await link_wallet(served, "alice")
    stranger = await link_wallet(served, "bob")

    forbidden = await post(served, "/v1/analyze", {"wallets": [wallet, stranger]}, user="alice")
    accepted = [await post(served, "/v1/analyze", {"wallets": [wallet]}, user="alice") for _ in range(3)]
    over = await post(served, "/v1/analyze", {"wallets": [wallet]}, user="alice")
    empty = await post(served, "/v1/analyze", {"wallets": []}, user="alice")

    assert forbidden.status_code == 403 and stranger in forbidden.json()["detail"]
    assert [r.status_code for r in accepted] == [202, 202, 202]
    assert over.status_code == 409 and over.json()["type"].endswith("/analyze-quota-exceeded")
    assert empty.status_code == 422


async def test_the_analyze_rate_limit_policy_applies(served: Served, signing_key: Any, jwks_server: Any) -> None:
    settings = api_settings(
        served.api.deps.settings.database.url.get_secret_value(),  # type: ignore[union-attr]
        rate_limits={"policies": {"user": {"limit": 10_000}, "analyze": {"limit": 1, "window_s": 3600}}},
    )
    async with running_api(settings, signing_key, jwks_server.url) as api:
        mine = Served(api, served.url)
        wallet = await link_wallet(mine, "carol")
        first = await post(mine, "/v1/analyze", {"wallets": [wallet]}, user="carol")
        second = await post(mine, "/v1/analyze", {"wallets": [wallet]}, user="carol")

    assert first.status_code == 202
    assert second.status_code == 429 and second.headers["content-type"] == PROBLEM
    assert int(second.headers["retry-after"]) > 0 and "analyze" in second.headers["ratelimit-policy"]
