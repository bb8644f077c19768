"""JSON API of retry policies: list the rules with their stats; create, update, move and
delete them (admin, audited).

The same service as the page (``deadletters.policies.rules``). A bad value,
an invalid pattern included, answers 400 with ``field`` naming it. Rules are
listed in evaluation order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from ninja import Field, Path, Router, Schema
from pydantic import WithJsonSchema

from dashboard.core.api import Out, errors
from dashboard.deadletters.policies import rules
from dashboard.deadletters.schemas import MAX_ID

# A path id that is not an integer is a 400 naming it; one out of range a 404.
PolicyId = Path[
    Annotated[int, WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_ID})]
]

router = Router(tags=["retry policies"])


class RetryPolicyIn(Schema):
    """A rule. Patterns: empty matches anything; ``syntax`` says how they read."""

    name: str = Field(max_length=200)
    cluster: str = Field("", description="a cluster's slug; empty: every cluster")
    syntax: str = Field("glob", description="glob (whole value) or regex (RE2, anywhere)")
    match_dlq: str = ""
    match_origin: str = Field("", description="as the inbox shows it, or one of its names")
    match_reason: str = ""
    match_exception_class: str = ""
    match_exception_message: str = ""
    action: str = Field("retry", description="retry (then park) or park")
    max_attempts: int = Field(3, description="retries before the letter is parked")
    delay_seconds: float = Field(60.0, description="the first retry's delay")
    factor: float = Field(2.0, description="each retry waits this much longer")
    cap_seconds: float = Field(3600.0, description="the longest delay")
    jitter: float = Field(0.1, description="random share of a delay, 0 to 1")
    enabled: bool = True
    dry_run: bool = Field(True, description="only record what it would do")

    def data(self) -> rules.RuleInput:
        return rules.RuleInput(**self.model_dump())


class RetryPolicyStatsOut(Out):
    matched: int = Field(description="letters it matched at capture, dry runs included")
    retries: int = Field(description="retries it scheduled")
    parked: int = Field(description="letters it parked")
    poison: int = Field(description="poison letters it left alone (parked, not retried)")
    would_retry: int = Field(description="dry run: letters it would have retried")
    would_park: int = Field(description="dry run: letters it would have parked")
    sent: int = Field(description="of the letters it scheduled, those requeued since")
    came_back: int = Field(description="of those sent, the ones that failed again")
    waiting: int = Field(
        description="of the letters it scheduled, those not sent yet (still sent if the rule"
        " is deleted or disabled)"
    )
    last_at: datetime | None = Field(description="its latest decision")


class RetryPolicyOut(Out):
    id: int
    position: int = Field(description="evaluation order, 0 first")
    mode: str = Field(description="dry_run, active or disabled")
    name: str
    cluster: str
    syntax: str
    match_dlq: str
    match_origin: str
    match_reason: str
    match_exception_class: str
    match_exception_message: str
    action: str
    max_attempts: int
    delay_seconds: float
    factor: float
    cap_seconds: float
    jitter: float
    enabled: bool
    dry_run: bool
    stats: RetryPolicyStatsOut


class RetryPoliciesOut(Out):
    policies: list[RetryPolicyOut] = Field(description="in evaluation order")


class RetryPolicyMoveIn(Schema):
    to: int = Field(ge=0, description="its new place, 0 = evaluated first")


class RetryPolicyDeletedOut(Out):
    deleted: bool


def policy_json(row: rules.PolicyRow) -> dict[str, Any]:
    values = rules.snapshot(row.policy)
    return {
        "id": row.policy.pk,
        "mode": row.mode,
        **values,
        "stats": vars(row.stats),
    }


@router.get(
    "/deadletters/policies",
    response=RetryPoliciesOut,
    url_name="api-deadletters-policies",
    summary="Retry policies in evaluation order, with their stats",
    operation_id="listRetryPolicies",
)
async def policy_list(request: HttpRequest) -> dict[str, Any]:
    found = await sync_to_async(rules.get_policies)()
    return {"policies": [policy_json(row) for row in found]}


async def _one(policy_id: int) -> dict[str, Any]:
    return policy_json(await sync_to_async(rules.get_policy)(policy_id))


@router.post(
    "/deadletters/policies",
    response={200: RetryPolicyOut, **errors(400)},
    url_name="api-deadletters-policy-create",
    summary="Create a retry policy, evaluated last (admin, audited)",
    operation_id="createRetryPolicy",
)
async def policy_create(request: HttpRequest, payload: RetryPolicyIn) -> dict[str, Any]:
    policy = await sync_to_async(rules.do_create_policy)(
        user=await request.auser(), data=payload.data(), request=request
    )
    return await _one(policy.pk)


@router.put(
    "/deadletters/policies/{policy_id}",
    response={200: RetryPolicyOut, **errors(400, 404)},
    url_name="api-deadletters-policy",
    summary="Replace a retry policy's values (admin, audited with before and after)",
    operation_id="updateRetryPolicy",
)
async def policy_update(
    request: HttpRequest, policy_id: PolicyId, payload: RetryPolicyIn
) -> dict[str, Any]:
    await sync_to_async(rules.do_update_policy)(
        user=await request.auser(), policy_id=policy_id, data=payload.data(), request=request
    )
    return await _one(policy_id)


@router.post(
    "/deadletters/policies/{policy_id}/move",
    response={200: RetryPolicyOut, **errors(400, 404)},
    url_name="api-deadletters-policy-move",
    summary="Move a retry policy to another place in the order (admin, audited)",
    operation_id="moveRetryPolicy",
)
async def policy_move(
    request: HttpRequest, policy_id: PolicyId, payload: RetryPolicyMoveIn
) -> dict[str, Any]:
    await sync_to_async(rules.do_move_policy)(
        user=await request.auser(), policy_id=policy_id, to=payload.to, request=request
    )
    return await _one(policy_id)


@router.delete(
    "/deadletters/policies/{policy_id}",
    response={200: RetryPolicyDeletedOut, **errors(400, 404)},
    url_name="api-deadletters-policy-delete",
    summary="Delete a retry policy; its decisions stay on the letters (admin, audited)",
    operation_id="deleteRetryPolicy",
)
async def policy_delete(request: HttpRequest, policy_id: PolicyId) -> dict[str, Any]:
    await sync_to_async(rules.do_delete_policy)(
        user=await request.auser(), policy_id=policy_id, request=request
    )
    return {"deleted": True}
