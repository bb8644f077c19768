"""``POST /clusters/{slug}/check``: an operator's *check now*, shared (see ``checks``)."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest
from ninja import Router

from dashboard.core import clusters
from dashboard.core.api import errors
from dashboard.core.audit import audit, require_role
from dashboard.core.roles import OPERATOR
from dashboard.overview.api import ClusterHealthOut
from dashboard.overview.checks import check_now

router = Router(tags=["clusters"])


@router.post(
    "/clusters/{slug}/check",
    response={200: ClusterHealthOut, **errors(403, 404)},
    url_name="api-cluster-check",
    summary="Check one cluster now (operator), shared with everyone asking at the same time",
    description="A check younger than MQB_HEALTH_CHECK_GAP seconds is returned as it is"
    " (source collector); otherwise one live check runs per cluster at a time, in whichever"
    " web process, and every request asking meanwhile gets its result (source live).",
    operation_id="clusterCheckNow",
)
async def cluster_check(request: HttpRequest, slug: str) -> dict[str, Any]:
    if slug not in {c.slug for c in clusters.get_cluster_configs()}:
        raise Http404(f"no cluster named {slug!r}")
    user = await request.auser()
    await require_role(
        user, OPERATOR, action="cluster.check", slug=slug, target=slug, request=request
    )
    health = await check_now(slug)
    await audit(
        action="cluster.check",
        user=user,
        slug=slug,
        target=slug,
        parameters={"source": health.source},
        detail=health.code,
        request=request,
    )
    return health.as_json()
