"""core.errors: problem rendering, client-safe details, readable configuration errors."""

from __future__ import annotations

import pytest

from core.errors import (
    PROBLEM_TYPE_BASE,
    AuthError,
    ConfigError,
    ConfigProblem,
    DatabaseError,
    ExternalServiceError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    OofError,
    ParseError,
    RateLimitedError,
    ValidationError,
)

SECRET_SQL = "SELECT * FROM moments WHERE wallet = 'x' -- password=hunter2"

ALL_ERRORS: list[OofError] = [
    OofError("boom", internal=SECRET_SQL),
    ConfigError([ConfigProblem("database.pool_max", "bad")]),
    DatabaseError("the database is unavailable", internal=SECRET_SQL),
    AuthError("token expired", reason="token_expired", internal=SECRET_SQL),
    ForbiddenError("not your wallet", internal=SECRET_SQL),
    ValidationError([FieldError("query.limit", "must be at most 500")], internal=SECRET_SQL),
    ExternalServiceError("jupiter", status=503, internal=SECRET_SQL),
    NotFoundError("no such moment", internal=SECRET_SQL),
    RateLimitedError(1.2, internal=SECRET_SQL),
    ParseError("transaction.message is missing", internal=SECRET_SQL),
]


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda error: type(error).__name__)
def test_problem_never_contains_internal_detail(error: OofError) -> None:
    # Arrange / Act
    problem = error.to_problem()

    # Assert
    assert "hunter2" not in repr(problem)
    assert "SELECT" not in repr(problem)
    assert "internal" not in problem
    assert error.public() == problem
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert problem["type"] == PROBLEM_TYPE_BASE + error.type_slug
    assert problem["status"] == error.status


def test_status_and_slug_per_class() -> None:
    expected = {
        AuthError: (401, "unauthorized"),
        ForbiddenError: (403, "forbidden"),
        NotFoundError: (404, "not-found"),
        ValidationError: (422, "validation"),
        ParseError: (422, "unparseable-transaction"),
        RateLimitedError: (429, "rate-limited"),
        DatabaseError: (503, "database-unavailable"),
        ExternalServiceError: (502, "upstream-unavailable"),
    }
    for cls, (status, slug) in expected.items():
        assert (cls.status, cls.type_slug) == (status, slug), cls.__name__
        assert issubclass(cls, OofError)


def test_type_slugs_are_unique_and_url_safe() -> None:
    slugs = [type(error).type_slug for error in ALL_ERRORS]
    assert len(slugs) == len(set(slugs))
    assert all(slug.replace("-", "").isalnum() and slug == slug.lower() for slug in slugs)


def test_parse_error_takes_a_positional_message() -> None:
    error = ParseError("meta.preTokenBalances entry is malformed")
    assert str(error) == "meta.preTokenBalances entry is malformed"
    assert error.to_problem()["detail"] == "meta.preTokenBalances entry is malformed"
    assert error.internal is None


def test_detail_defaults_to_title() -> None:
    assert NotFoundError().detail == "Not found"


def test_auth_error_carries_reason() -> None:
    problem = AuthError("token expired", reason="token_expired").to_problem()
    assert problem["reason"] == "token_expired"
    assert problem["status"] == 401


def test_validation_error_lists_fields() -> None:
    error = ValidationError([FieldError("query.limit", "too big"), FieldError("query.kinds", "unknown kind")])
    problem = error.to_problem()
    assert problem["status"] == 422
    assert problem["errors"] == [
        {"field": "query.limit", "message": "too big"},
        {"field": "query.kinds", "message": "unknown kind"},
    ]
    assert problem["detail"] == "2 field(s) are invalid"


def test_external_service_error_status_choices() -> None:
    assert ExternalServiceError("solana-rpc").status == 502
    error = ExternalServiceError("jupiter", status=503)
    assert error.status == 503
    assert error.to_problem()["service"] == "jupiter"
    # The class default is untouched by an instance override.
    assert ExternalServiceError.status == 502
    with pytest.raises(ValueError, match="status"):
        ExternalServiceError("jupiter", status=500)


@pytest.mark.parametrize(("retry_after", "expected"), [(0, 0), (1.0, 1), (1.2, 2), (59.9, 60), (-3, 0)])
def test_rate_limited_rounds_retry_after_up(retry_after: float, expected: int) -> None:
    error = RateLimitedError(retry_after)
    assert error.retry_after == expected
    assert error.to_problem()["retry_after"] == expected


def test_config_error_str_lists_every_problem() -> None:
    # Arrange
    problems = [
        ConfigProblem("database.pool_max", "Input should be a valid integer", "OOF_DATABASE__POOL_MAX"),
        ConfigProblem("/etc/oof.yaml", "file not found"),
        ConfigProblem("solana.wallets[0]", "is not a base58 32-byte public key", "configs/oof.yaml"),
    ]

    # Act
    text = str(ConfigError(problems))

    # Assert
    lines = text.splitlines()
    assert lines[0] == "configuration has 3 problem(s):"
    assert lines[1] == "  - database.pool_max: Input should be a valid integer [from OOF_DATABASE__POOL_MAX]"
    assert lines[2] == "  - /etc/oof.yaml: file not found"
    assert lines[3] == "  - solana.wallets[0]: is not a base58 32-byte public key [from configs/oof.yaml]"


def test_config_error_problem_body_hides_the_listing() -> None:
    error = ConfigError([ConfigProblem("OOF_DATABASE__URL", "must be a postgres:// URL")])
    problem = error.to_problem()
    assert "OOF_DATABASE__URL" not in repr(problem)
    assert problem["status"] == 500
    assert error.problems[0].location == "OOF_DATABASE__URL"


def test_errors_are_exceptions() -> None:
    with pytest.raises(OofError):
        raise DatabaseError(internal="connection refused")
