"""`POST /v1/analyze` (users) and `GET /v1/analyze/{job_id}` (the job's owner, or a service).

Submitting costs one request of the `analyze` rate-limit policy on top of the `user` policy
every call pays: the default `rate_limits.routes` maps `POST /v1/analyze` to that route class,
counted per user (`key: user`) by the rate-limit middleware before this route runs. Every wallet
must be linked to the caller (403 otherwise); a user with too many jobs queued or running gets
a 409 `analyze-quota-exceeded`. The answer is a
202 with the job id and its `self` link; `oof:analyze` (`actors.analyze`, kept by the API's
replicas or started by `oof run`: `deployments.analyze_runner`) lists each wallet's newest
`limit` transactions, fetches them, adds the market's prices of the time (`history_prices`), runs them through
its own actor lane and reports progress there (`phase` listing → fetching → pricing → detecting → done | failed,
counts, `market`, moments by kind). Another user's job answers 404, exactly like a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field

from deployments.analyze_jobs import AnalyzeJobs, job_to_dict
from deployments.auth import Principal
from deployments.compose import Deps, get_deps
from deployments.linking import NamedConnections
from deployments.middleware import ANY_CALLER, USERS_ONLY, caller, user_caller
from deployments.problems import Problem, problem_responses

__all__ = ["router", "AnalyzeRequest", "JobOut", "get_analyze_jobs"]

router = APIRouter(prefix="/v1", tags=["analyze"])


class AnalyzeRequest(BaseModel):
    wallets: list[str] = Field(min_length=1, max_length=10, description="base58 addresses, each linked to you")
    limit: int | None = Field(None, ge=1, le=100_000,
                              description="most transactions to analyze per wallet, newest first"
                                          " (default: the runner's `analyze.default_limit`, 1000)")


class JobOut(BaseModel):
    job_id: str = Field(description="ULID")
    status: str = Field(description="queued | running | done | failed")
    wallets: list[str]
    progress: dict[str, Any] = Field(
        description="what the runner reports: phase (listing | fetching | pricing | detecting | done | failed),"
                    " limit, attempts, signatures per wallet, transactions, processed, fetched, not_found, trades,"
                    " last_slot, market (the market's prices of the time: provider, status off | no_trades | priced"
                    " | partial | unavailable, error, mints, mints_priced, mints_refused, mints_skipped, candles,"
                    " prices, malformed, requests), prices_processed, moments by kind (once done), heartbeat_at")
    error: str | None
    created_at: str | None
    updated_at: str | None
    links: dict[str, str]


def get_analyze_jobs(request: Request, deps: Annotated[Deps, Depends(get_deps)]) -> AnalyzeJobs:
    """The app's job service, made on first use (tests may preset `app.state.analyze_jobs`)."""
    jobs: AnalyzeJobs | None = getattr(request.app.state, "analyze_jobs", None)
    if jobs is None:
        jobs = request.app.state.analyze_jobs = AnalyzeJobs(NamedConnections(deps, "analyze_jobs"))
    return jobs


@router.post(
    "/analyze",
    response_model=JobOut,
    status_code=202,
    summary="Queue a backfill + detection run over some of your linked wallets",
    responses={
        **problem_responses(401, 403, 422, 429),
        409: {"model": Problem, "description": "`analyze-quota-exceeded`: too many active jobs"},
    },
    openapi_extra=USERS_ONLY,
)
async def submit_analyze(
    body: AnalyzeRequest,
    response: Response,
    principal: Annotated[Principal, Depends(user_caller)],
    jobs: Annotated[AnalyzeJobs, Depends(get_analyze_jobs)],
) -> JobOut:
    job = await jobs.submit(principal.id, body.wallets, body.limit)
    body_out = job_to_dict(job)
    response.headers["Location"] = body_out["links"]["self"]
    return JobOut.model_validate(body_out)


@router.get(
    "/analyze/{job_id}",
    response_model=JobOut,
    summary="Progress of an analyze job",
    responses=problem_responses(401, 403, 404, 422, 429),
    openapi_extra=ANY_CALLER,
)
async def get_analyze(
    job_id: Annotated[str, Path(max_length=32, description="the ULID returned by POST /v1/analyze")],
    principal: Annotated[Principal, Depends(caller)],
    jobs: Annotated[AnalyzeJobs, Depends(get_analyze_jobs)],
) -> JobOut:
    return JobOut.model_validate(job_to_dict(await jobs.get(principal, job_id)))
