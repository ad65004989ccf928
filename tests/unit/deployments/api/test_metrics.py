"""/metrics: Prometheus text with request, auth, cache, DB, pool and business metrics, one registry per app."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from core.models import MomentKind
from deployments.metrics import ApiMetrics
from tests.unit.deployments.api.conftest import Api, make_moment, new_wallet


async def test_metrics_cover_requests_db_pool_and_business(clean: Api) -> None:
    wallet = new_wallet()
    await clean.add_moments(
        make_moment(wallet, 1_750_000_000, kind=MomentKind.RUG, severity="0.95", usd="1000"),
        make_moment(wallet, 1_750_000_001, kind=MomentKind.RUG, severity="0.15", usd="0.5"),
    )
    clean.deps.cache.clear_local()
    await clean.deps.cache.invalidate("metrics:moment-stats:v1")
    await clean.get("/v1/moments", service=True)
    await clean.get("/v1/moments")  # 401
    response = await clean.get("/metrics", service=True)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert {
        "oof_http_request_duration_seconds", "oof_auth_failures", "oof_db_query_duration_seconds",
        "oof_cache_events", "oof_db_pool_size", "oof_moments", "oof_moments_missed_usd", "oof_moment_severity",
        "oof_active_users", "oof_active_users_source",
    } <= families.keys()
    samples = [s for f in families.values() for s in f.samples]
    assert all(s.labels.get("replica") == clean.deps.instance for s in samples if s.name != "oof_metrics_replicas")
    assert [s.value for s in samples if s.name == "oof_metrics_replicas"] == [1.0]  # this app runs one "replica"

    def value(name: str, **labels: str) -> float:
        return next(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())

    assert value("oof_http_request_duration_seconds_count", route="/v1/moments", status="200") >= 1
    assert value("oof_auth_failures_total", reason="token_missing") >= 1
    assert value("oof_db_query_duration_seconds_count", query="list_moments") >= 1
    assert value("oof_moments", kind="RUG") == 2 and value("oof_moments", kind="S2E") == 0
    assert value("oof_moments_missed_usd", kind="RUG") == 1000.5
    assert value("oof_moment_severity_bucket", kind="RUG", le="0.2") == 1
    assert value("oof_moment_severity_bucket", kind="RUG", le="+Inf") == 2
    assert value("oof_moment_stats_up") == 1
    # the pool gauges live in the process-wide registry (one pool per replica; here the last app built wins)
    assert any(s.name == "oof_db_pool_size" and s.labels["pool"] == "api" for s in samples)


def test_each_app_has_its_own_registry() -> None:
    one, two = ApiMetrics("a"), ApiMetrics("b")  # no duplicate-registration error
    one.auth_failure("token_expired")
    assert b'reason="token_expired"' in one.render() and b"token_expired" not in two.render()
