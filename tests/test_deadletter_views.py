"""The dead-letter queues page and its JSON API: listing, manage and let go, roles, CSRF, audit."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from django.test import AsyncClient

from dashboard.core.connections import close_all
from dashboard.models import AuditEntry, ManagedDeadLetterQueue
from tests.conftest import free_port
from tests.support import deadletters as h

pytestmark = [pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]

API = "/api/deadletters/queues"


@pytest.fixture
async def rabbit(use_clusters, rabbitmq_config, rabbitmq_vhost, settings):
    use_clusters(rabbitmq_config)
    # Other runs' vhosts on the shared broker may hold thousands of queues.
    settings.MQB_DLQ_DISCOVERY_VHOSTS = [rabbitmq_vhost]
    yield rabbitmq_config
    await close_all()


@pytest.fixture
async def dlq(rabbitmq_vhost):
    """A DLQ fed by a work queue through a dead-letter exchange, holding one dead letter."""
    events, work, name = await h.dead_letter_topology(rabbitmq_vhost, h.unique("views"))
    await h.reject_through(rabbitmq_vhost, events, work, ["v-1"])
    return {"cluster": "test-rabbitmq", "vhost": rabbitmq_vhost, "name": name, "work": work}


def _find(clusters: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(d for c in clusters for d in c["dlqs"] if d["name"] == name)


async def test_it_needs_a_login(async_client):
    assert (await async_client.get(API)).status_code == 401
    page = await async_client.get("/deadletters/queues/")
    assert page.status_code == 302


async def test_it_lists_dlqs_with_sources_for_viewers_without_buttons(
    async_client, viewer, rabbit, dlq
):
    await async_client.aforce_login(viewer)
    data = (await async_client.get(API)).json()
    (cluster,) = data["clusters"]
    assert cluster["slug"] == "test-rabbitmq" and cluster["error"] is None
    row = _find(data["clusters"], dlq["name"])
    assert row["vhost"] == dlq["vhost"]
    assert row["found_by"] == ["dead-letter exchange", "name"]
    assert [(s["name"], s["via"], s["routing_key"]) for s in row["sources"]] == [
        (dlq["work"], "argument", "dead")
    ]
    assert row["managed"] is None and row["capturable"] is True
    page = await async_client.get("/deadletters/queues/")
    html = page.content.decode()
    assert page.status_code == 200
    assert dlq["name"] in html and dlq["work"] in html
    assert "Manage</button>" not in html


async def test_admins_manage_and_let_go_through_the_api_with_an_audit(
    async_client, admin_user_, rabbit, dlq
):
    await async_client.aforce_login(admin_user_)
    body = {k: dlq[k] for k in ("cluster", "vhost", "name")}
    done = await async_client.post(f"{API}/manage", body, content_type="application/json")
    assert done.status_code == 200 and done.json() == {"managed": True, "changed": True}
    again = await async_client.post(f"{API}/manage", body, content_type="application/json")
    assert again.json()["changed"] is False
    row = await ManagedDeadLetterQueue.objects.select_related("managed_by").aget(name=dlq["name"])
    assert row.active and row.vhost == dlq["vhost"] and row.sources == [dlq["work"]]
    assert row.managed_by == admin_user_
    listed = _find((await async_client.get(API)).json()["clusters"], dlq["name"])
    assert listed["managed"]["managed_by"] == admin_user_.username

    released = await async_client.post(f"{API}/release", body, content_type="application/json")
    assert released.status_code == 200
    row = await ManagedDeadLetterQueue.objects.aget(pk=row.pk)
    assert not row.active and row.released_at is not None
    twice = await async_client.post(f"{API}/release", body, content_type="application/json")
    assert twice.status_code == 400 and "not managed" in twice.json()["error"]
    entries = [
        (e.action, e.outcome, e.username)
        async for e in AuditEntry.objects.filter(target__contains=dlq["name"]).order_by("pk")
    ]
    assert entries == [
        ("deadletters.manage", "ok", "ada"),
        ("deadletters.manage", "ok", "ada"),
        ("deadletters.release", "ok", "ada"),
        ("deadletters.release", "failed", "ada"),
    ]


async def test_operators_may_not_manage_and_are_audited(async_client, operator, rabbit, dlq):
    await async_client.aforce_login(operator)
    body = {k: dlq[k] for k in ("cluster", "vhost", "name")}
    refused = await async_client.post(f"{API}/manage", body, content_type="application/json")
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    form = await async_client.post("/deadletters/queues/manage", body)
    assert form.status_code == 403
    assert not await ManagedDeadLetterQueue.objects.filter(name=dlq["name"]).aexists()
    assert (
        await AuditEntry.objects.filter(
            action="deadletters.manage", outcome="refused", username="otto"
        ).acount()
        == 2
    )


async def test_writes_need_the_csrf_token(admin_user_, rabbit, dlq):
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(admin_user_)
    body = {k: dlq[k] for k in ("cluster", "vhost", "name")}
    refused = await client.post(f"{API}/manage", body, content_type="application/json")
    assert refused.status_code == 403
    page = await client.get("/deadletters/queues/")
    token = page.cookies["csrftoken"].value
    done = await client.post(
        f"{API}/manage", body, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert done.status_code == 200


async def test_the_page_manages_and_lets_go_by_form(async_client, admin_user_, rabbit, dlq):
    await async_client.aforce_login(admin_user_)
    page = (await async_client.get("/deadletters/queues/")).content.decode()
    assert "Manage</button>" in page
    body = {k: dlq[k] for k in ("cluster", "vhost", "name")}
    managed = await async_client.post("/deadletters/queues/manage", body, follow=True)
    html = managed.content.decode()
    assert "now captures" in html and "Let go</button>" in html
    released = await async_client.post("/deadletters/queues/release", body, follow=True)
    assert "Let go of" in released.content.decode()
    assert not (await ManagedDeadLetterQueue.objects.aget(name=dlq["name"])).active


async def test_it_refuses_queues_that_are_not_dlqs_and_read_only_clusters(
    async_client, admin_user_, use_clusters, rabbitmq_config, rabbit, dlq
):
    await async_client.aforce_login(admin_user_)
    plain = {"cluster": "test-rabbitmq", "vhost": dlq["vhost"], "name": dlq["work"]}
    missing = await async_client.post(f"{API}/manage", plain, content_type="application/json")
    assert missing.status_code == 404 and "not a dead-letter queue" in missing.json()["error"]
    use_clusters(replace(rabbitmq_config, read_only=True))
    body = {k: dlq[k] for k in ("cluster", "vhost", "name")}
    read_only = await async_client.post(f"{API}/manage", body, content_type="application/json")
    assert read_only.status_code == 409
    bad = await async_client.post(f"{API}/manage", {"vhost": "x"}, content_type="application/json")
    assert bad.status_code == 400


async def test_a_down_cluster_says_why_and_still_lists_its_managed_dlqs(
    async_client, admin_user_, use_clusters, rabbitmq_config, rabbit, dlq
):
    await async_client.aforce_login(admin_user_)
    body = {k: dlq[k] for k in ("cluster", "vhost", "name")}
    managed = await async_client.post(f"{API}/manage", body, content_type="application/json")
    assert managed.status_code == 200
    await close_all()
    use_clusters(replace(rabbitmq_config, management_url=f"http://127.0.0.1:{free_port()}"))
    (cluster,) = (await async_client.get(API)).json()["clusters"]
    assert "unreachable" in cluster["error"]
    (row,) = cluster["dlqs"]
    assert row["name"] == dlq["name"] and row["found_by"] == ["managed"] and row["depth"] is None
    page = (await async_client.get("/deadletters/queues/")).content.decode()
    assert "Could not list" in page and dlq["name"] in page
