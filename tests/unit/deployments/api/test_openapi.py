"""/openapi.json: a valid OpenAPI 3.1 document declaring every route, both auth schemes and the problem responses.

`oas31_schema.json` is the OpenAPI Initiative's 3.1 schema (2022-10-07, "without schema
validation" flavour), vendored so the check runs offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from deployments.routes import ROUTERS
from tests.unit.deployments.api.conftest import Api

SCHEMA = json.loads((Path(__file__).with_name("oas31_schema.json")).read_text())
PROBLEM = "application/problem+json"


@pytest.fixture
async def document(api: Api) -> dict[str, Any]:
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_the_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    errors = sorted(Draft202012Validator(SCHEMA).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_every_route_is_documented_with_its_security(document: dict[str, Any]) -> None:
    routes = {(route.path, method.lower()) for router in ROUTERS for route in router.routes for method in route.methods}
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert routes == documented
    schemes = document["components"]["securitySchemes"]
    assert schemes["dynamicJwt"] == {**schemes["dynamicJwt"], "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["serviceHmac"]["type"] == "apiKey" and schemes["serviceHmac"]["in"] == "header"
    paths = document["paths"]
    assert paths["/v1/moments"]["get"]["security"] == [{"dynamicJwt": []}, {"serviceHmac": []}]
    assert paths["/health/detailed"]["get"]["security"] == [{"serviceHmac": []}]
    for public in ("/health", "/health/ready"):  # the only public routes (DESIGN: liveness and readiness)
        assert paths[public]["get"]["security"] == []
    assert paths["/metrics"]["get"]["security"] == [{"serviceHmac": []}, {"metricsToken": []}]
    assert schemes["metricsToken"]["in"] == "header"


def test_errors_are_documented_as_problems(document: dict[str, Any]) -> None:
    expected = {
        "/v1/moments": {"401", "403", "422", "429", "500"},
        "/v1/moments/{moment_id}": {"401", "403", "404", "422", "429", "500"},
        "/v1/wallets/{wallet}/summary": {"401", "403", "422", "429", "500"},
        "/v2/moments": {"401", "403", "422", "429", "500"},
        "/health/detailed": {"401", "403", "429", "500"},
        "/health/ready": {"500", "503"},
    }
    for path, statuses in expected.items():
        responses = document["paths"][path]["get"]["responses"]
        errors = {status for status in responses if status[0] in "45"}
        assert errors == statuses, path
        for status in statuses:
            assert list(responses[status]["content"]) == [PROBLEM], (path, status)
    schemas = document["components"]["schemas"]
    assert {"Problem", "AuthProblem", "ValidationProblem", "RateLimitProblem", "MomentOut", "WalletSummary"} <= schemas.keys()
    validation = document["paths"]["/v1/moments"]["get"]["responses"]["422"]["content"][PROBLEM]["schema"]
    assert validation == {"$ref": "#/components/schemas/ValidationProblem"}
    assert schemas["MomentOut"]["properties"]["usd_value"]["type"] == "string"
