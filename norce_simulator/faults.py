"""Fault injection: errors and latency per endpoint group, failing and hanging jobs.

Set through ``PUT /_sim/faults`` (or ``sim.state.set_faults``). The middleware here
applies the per-group part to every API call; the job part is read by the job runner.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from norce_simulator.state import SimState

Group = Literal["identity", "connect", "job", "query"]


class GroupFault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error_rate: float = Field(default=0.0, ge=0, le=1)  # share of calls answered with `status`
    error_next: int = Field(default=0, ge=0)  # the next N calls fail (deterministic)
    status: Literal[429, 500, 502, 503, 504] = 503
    retry_after_s: float | None = Field(default=None, ge=0)  # 429 gets 1 s when unset
    latency_s: float = Field(default=0.0, ge=0)  # added before answering
    # The next N calls are carried out, then answered with `status` as if a gateway lost
    # the answer: the caller cannot know the import was accepted (a job exists).
    lose_answer_next: int = Field(default=0, ge=0)


class FaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identity: GroupFault = Field(default_factory=GroupFault)
    connect: GroupFault = Field(default_factory=GroupFault)
    job: GroupFault = Field(default_factory=GroupFault)  # Job/Get, GetLog, List, Ping
    query: GroupFault = Field(default_factory=GroupFault)
    fail_next_jobs: int = Field(default=0, ge=0)  # next N jobs end Failed (3)
    fail_job_rate: float = Field(default=0.0, ge=0, le=1)
    hang_next_jobs: int = Field(default=0, ge=0)  # next N jobs never finish
    job_extra_lead_time_s: float = Field(default=0.0, ge=0)


def group_of(path: str) -> tuple[Group | None, str]:
    """(endpoint group, endpoint name for the call counters) of a request path."""
    if path.startswith("/identity/"):
        return "identity", "identity:token"
    if path.startswith("/commerce/connect/4.0/"):
        rest = path.removeprefix("/commerce/connect/4.0/")
        return ("job" if rest.startswith("Job/") else "connect"), f"connect:{rest}"
    if path.startswith("/commerce/query/2.0/"):
        rest = path.removeprefix("/commerce/query/2.0/").split("(", 1)[0]
        return "query", f"query:{rest}"
    return None, path


def error_response(
    group: Group, status: int, message: str, retry_after: float | None
) -> web.Response:
    """An error in the shape of the group's API (OData error for Query)."""
    if group == "query":
        body = {"error": {"code": str(status), "message": message}}
    elif group == "identity":
        body = {"error": "temporarily_unavailable", "error_description": message}
    else:
        body = {"StatusCode": status, "Description": message}
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def make_fault_middleware(state: SimState) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def faults(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        group, name = group_of(request.path)
        if group is None:
            return await handler(request)
        state.calls[name] += 1
        fault: GroupFault = getattr(state.faults, group)
        if fault.latency_s:
            await asyncio.sleep(fault.latency_s)
        hit = False
        if fault.error_next > 0:
            fault.error_next -= 1
            hit = True
        elif fault.error_rate and state.rng.random() < fault.error_rate:
            hit = True
        if hit:
            retry = fault.retry_after_s
            if retry is None and fault.status == 429:
                retry = 1.0
            return error_response(group, fault.status, "Simulated fault (injected).", retry)
        response = await handler(request)
        if fault.lose_answer_next > 0 and response.status < 400:
            fault.lose_answer_next -= 1
            return error_response(group, fault.status, "Simulated lost answer (injected).", None)
        return response

    return faults
