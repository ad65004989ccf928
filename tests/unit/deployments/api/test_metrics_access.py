"""/metrics is not public: services, or a scraper with `OOF-Metrics <api.metrics_token>`; and any
replica's answer holds every live replica's API metrics (shared through Redis)."""

from __future__ import annotations

import secrets
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from deployments.auth.testing import JwksServer, RsaTestKey
from deployments.metrics import ApiMetrics
from deployments.metrics_share import merge_expositions
from tests.unit.deployments.api.conftest import Api, api_settings, running_api

TOKEN = "scraper-token-0123456789abcdef"


async def test_who_may_scrape(api_dsn: str, signing_key: RsaTestKey, jwks_server: JwksServer) -> None:
    settings = api_settings(api_dsn, api={"metrics_token": TOKEN})
    async with running_api(settings, signing_key, jwks_server.url) as api:
        assert (await api.get("/metrics", service=True)).status_code == 200
        ok = await api.get("/metrics", headers={"authorization": f"OOF-Metrics {TOKEN}"})
        assert ok.status_code == 200 and "oof_http_request_duration_seconds" in ok.text
        refused = {
            "anonymous": await api.get("/metrics"),
            "wrong token": await api.get("/metrics", headers={"authorization": "OOF-Metrics not-the-token"}),
            "user": await api.get("/metrics", user="someone"),
        }
        assert {k: r.status_code for k, r in refused.items()} == {"anonymous": 401, "wrong token": 401, "user": 403}
        assert all(r.headers["content-type"] == "application/problem+json" for r in refused.values())
        assert all(TOKEN not in r.text for r in refused.values())
        assert (await api.get("/v1/moments", headers={"authorization": f"OOF-Metrics {TOKEN}"})).status_code == 401


async def test_without_a_configured_token_only_services_scrape(clean: Api) -> None:
    assert (await clean.get("/metrics", headers={"authorization": f"OOF-Metrics {TOKEN}"})).status_code == 401


async def test_two_replicas_answer_with_both(api_dsn: str, signing_key: RsaTestKey, jwks_server: JwksServer) -> None:
    settings = api_settings(api_dsn)
    namespace = f"oof-test-{secrets.token_hex(4)}:"
    async with running_api(settings, signing_key, jwks_server.url, namespace=namespace, instance="replica-a") as a, \
            running_api(settings, signing_key, jwks_server.url, namespace=namespace, instance="replica-b") as b:
        await b.get("/v1/moments", service=True)  # only b served this
        await b.deps.metrics_share.publish()  # (what b does every 15 s and on every scrape it answers)
        text = (await a.get("/metrics", service=True)).text
    counts = _samples(text, "oof_http_request_duration_seconds_count", route="/v1/moments")
    assert {s.labels["replica"] for s in counts} == {"replica-b"}
    assert [s.value for s in _samples(text, "oof_metrics_replicas")] == [2.0]


def test_merging_keeps_every_replicas_series_and_only_the_answerers_business_metrics() -> None:
    a, b = ApiMetrics("a"), ApiMetrics("b")
    a.observe_request("GET", "/x", 200, 0.01)
    b.observe_request("GET", "/x", 200, 0.02)
    a.set_moment_stats({})
    b.set_moment_stats(None)
    merged = merge_expositions(a.render(), [b.render()]).decode()
    families = {f.name: f for f in text_string_to_metric_families(merged)}  # parses: one family per name
    replicas = {s.labels["replica"] for s in families["oof_http_request_duration_seconds"].samples}
    assert replicas == {"a", "b"}
    assert {s.labels["replica"] for s in families["oof_moment_stats_up"].samples} == {"a"}
    assert merged.count("# TYPE oof_http_request_duration_seconds histogram") == 1


def _samples(text: str, name: str, **labels: str) -> list[Any]:
    return [s for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == name and labels.items() <= s.labels.items()]
