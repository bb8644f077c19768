"""The redirects page, its form, its JSON API and the letter page's "Goes to"; roles and 400s."""

from __future__ import annotations

import uuid

import pytest

from dashboard.core.connections import close_all
from dashboard.models import AuditEntry, OriginRedirect
from tests.support import deadletter_flow as flow

pytestmark = [pytest.mark.django_db(transaction=True)]

API = "/api/deadletters/redirects"
PAGE = "/deadletters/redirects/"
NEW = "/deadletters/redirects/new"
BODY = {
    "cluster": "test-rabbitmq",
    "vhost": "",
    "match": {"exchange": "orders"},
    "target": {"exchange": "orders-v2"},
    "note": "renamed in March",
}


async def test_admins_create_update_and_delete_through_the_api(
    async_client, use_clusters, admin_user_
):
    await async_client.aforce_login(admin_user_)

    created = await async_client.post(API, BODY, content_type="application/json")
    assert created.status_code == 201
    row = created.json()
    assert row["match"] == {"exchange": "orders", "routing_key": ""}
    assert (row["vhost"], row["enabled"], row["created_by"]) == ("", True, "ada")
    updated = await async_client.patch(
        f"{API}/{row['id']}", {"enabled": False}, content_type="application/json"
    )
    assert updated.status_code == 200 and updated.json()["enabled"] is False
    listed = (await async_client.get(API)).json()["redirects"]
    assert [r["id"] for r in listed] == [row["id"]]
    assert (await async_client.delete(f"{API}/{row['id']}")).status_code == 204
    assert (await async_client.delete(f"{API}/{row['id']}")).status_code == 404
    assert (
        await async_client.patch(f"{API}/999999", {}, content_type="application/json")
    ).status_code == 404
    actions = [
        a
        async for a in AuditEntry.objects.filter(action__startswith="deadletters.redirect_")
        .order_by("time")
        .values_list("action", flat=True)
    ]
    assert actions == [
        "deadletters.redirect_create",
        "deadletters.redirect_update",
        "deadletters.redirect_delete",
    ]


async def test_kafka_redirects_have_no_vhost_in_the_api(async_client, use_clusters, admin_user_):
    await async_client.aforce_login(admin_user_)
    body = {"cluster": "test-kafka", "match": {"topic": "a"}, "target": {"topic": "b"}}

    created = await async_client.post(API, body, content_type="application/json")

    assert created.status_code == 201 and created.json()["vhost"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"match": {}}, "from.exchange"),
        ({"target": {"exchange": "x" * 200}}, "to.exchange"),
        ({"match": {"topic": "orders"}}, "from.topic"),
        ({"vhost": "v" * 300}, "vhost"),
        ({"note": "n" * 501}, "note"),
    ],
)
async def test_bad_input_is_a_400_naming_its_field(
    async_client, use_clusters, admin_user_, change, field
):
    await async_client.aforce_login(admin_user_)

    answer = await async_client.post(API, {**BODY, **change}, content_type="application/json")

    assert answer.status_code == 400
    assert answer.json()["field"] == field
    assert await OriginRedirect.objects.acount() == 0


async def test_a_lone_surrogate_is_a_400_not_a_crash(async_client, use_clusters, admin_user_):
    await async_client.aforce_login(admin_user_)
    raw = '{"cluster": "test-kafka", "match": {"topic": "a\\ud800"}, "target": {"topic": "b"}}'

    answer = await async_client.post(API, raw, content_type="application/json")

    assert answer.status_code == 400 and answer.json()["field"] == "from.topic"


async def test_viewers_and_operators_read_but_may_not_write(
    async_client, use_clusters, viewer, operator
):
    for user in (viewer, operator):
        await async_client.aforce_login(user)

        assert (await async_client.get(API)).status_code == 200
        denied = await async_client.post(API, BODY, content_type="application/json")
        assert denied.status_code == 403
        page = (await async_client.get(PAGE)).content.decode()
        assert "No redirects" in page and "Add a redirect" not in page
        form = {"cluster": "test-rabbitmq", "from.exchange": "a", "to.exchange": "b"}
        assert (await async_client.post(NEW, form)).status_code == 403
    assert await OriginRedirect.objects.acount() == 0
    refused = AuditEntry.objects.filter(action="deadletters.redirect_create", outcome="refused")
    assert await refused.acount() == 4


async def test_the_form_asks_the_kinds_fields_and_shows_errors_under_them(
    async_client, use_clusters, admin_user_
):
    await async_client.aforce_login(admin_user_)
    rabbit = (await async_client.get(NEW, {"cluster": "test-rabbitmq"})).content.decode()
    kafka = (await async_client.get(NEW, {"cluster": "test-kafka"})).content.decode()
    assert 'name="from.exchange"' in rabbit and 'name="to.routing_key"' in rabbit
    assert 'name="vhost"' in rabbit
    assert 'name="from.topic"' in kafka and 'name="vhost"' not in kafka
    assert (await async_client.get(NEW, {"cluster": "nope"})).status_code == 404

    bad = await async_client.post(
        NEW, {"cluster": "test-kafka", "from.topic": "no spaces", "to.topic": "ok"}
    )

    assert bad.status_code == 400
    html = bad.content.decode()
    assert 'id="redirect-error"' in html and "from.topic" in html
    assert 'name="from.topic" value="no spaces" placeholder="(any)" aria-invalid="true"' in html


async def test_the_page_adds_disables_and_deletes_by_form(async_client, use_clusters, admin_user_):
    await async_client.aforce_login(admin_user_)
    form = {
        "cluster": "test-kafka",
        "from.topic": "orders",
        "to.topic": "orders-v2",
        "note": "moved",
        "enabled": "on",
    }

    added = await async_client.post(NEW, form, follow=True)
    row = await OriginRedirect.objects.aget()
    html = added.content.decode()
    assert f"Redirect #{row.pk} added" in html and "topic orders-v2" in html
    disabled = await async_client.post(f"{PAGE}{row.pk}/toggle", {"enabled": "0"}, follow=True)
    assert "disabled" in disabled.content.decode()
    assert not (await OriginRedirect.objects.aget()).enabled
    await async_client.post(f"{PAGE}{row.pk}/delete", {}, follow=True)
    assert await OriginRedirect.objects.acount() == 0


@pytest.mark.rabbitmq
async def test_the_letter_page_says_where_a_requeue_goes_and_why(
    async_client, use_clusters, rabbitmq_vhost, operator, admin_user_
):
    made = await flow.rabbitmq_dead_letters(rabbitmq_vhost, [f"lp-{uuid.uuid4().hex[:6]}"])
    [letter] = await flow.rows_of(made.dlq)
    await close_all()
    await async_client.aforce_login(operator)
    url = f"/deadletters/{letter.pk}/"
    before = (await async_client.get(url)).content.decode()
    assert "Goes to" in before
    assert "its origin (no redirect applies)" in before, "one name for the origin, not two"
    assert "redirected from" not in before

    await async_client.aforce_login(admin_user_)
    body = {**BODY, "match": {"exchange": made.events}, "note": "events v2"}
    row = (await async_client.post(API, body, content_type="application/json")).json()
    await async_client.aforce_login(operator)
    after = (await async_client.get(url)).content.decode()

    assert "orders-v2 / order.0.created" in after
    assert f'redirected from <span class="name">{made.events} / order.0.created</span>' in after
    assert f"redirect #{row['id']}</a>, events v2" in after
    assert f'href="/deadletters/redirects/#redirect-{row["id"]}"' in after
