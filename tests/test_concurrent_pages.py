"""Many viewers at once: queries per page view, reused letter counts, shared broker connections.

Nothing here is timed. The page tests count database queries per request and check
that reused counts follow every change of the letters; the connection tests count
this process's TCP connections to the real RabbitMQ while many reads run at once.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from brokers.rabbitmq.adapter import RabbitMQBroker
from brokers.rabbitmq.http import POOL_SIZE
from dashboard.core import clusters, connections, letter_counts
from dashboard.models import DeadLetter
from tests.support.health import collect_once
from tests.support.sockets import connections_to

GROUPS = 6


def seed(per_group: int = 5, tag: str = "many") -> list[DeadLetter]:
    cluster = clusters.sync_cluster_rows()["test-rabbitmq"]
    return DeadLetter.objects.bulk_create(
        DeadLetter(
            cluster=cluster,
            dlq="orders.dlq",
            capture_key=f"{tag}-{g}-{n}",
            fingerprint=f"{g:032x}",
            origin_queue=f"orders-{g}",
            exception_class=f"app.Error{g}",
            reason="rejected",
        )
        for g in range(GROUPS)
        for n in range(per_group)
    )


def pending_cells(page: str) -> list[str]:
    """The inbox's pending column, group by group."""
    return [
        cell.split(">", 1)[1].split("<", 1)[0] for cell in page.split('data-part="pending"')[1:]
    ]


@pytest.fixture
def letters(db, use_clusters) -> list[DeadLetter]:
    letter_counts.forget()
    return seed()


@pytest.mark.django_db
@pytest.mark.rabbitmq
@pytest.mark.kafka
def test_the_overview_reads_a_bounded_number_of_queries(
    client, viewer, letters, django_assert_max_num_queries
):
    collect_once()
    client.force_login(viewer)
    client.get("/")
    # session, user, its groups (twice: the page and the menu), clusters, the letters' stamp
    # (two queries), the collector lease and its members; the pending counts are reused
    # while no letter changed.
    with django_assert_max_num_queries(9):
        page = client.get("/").content.decode()
    assert f"{GROUPS * 5} pending" in page


@pytest.mark.django_db
def test_the_inbox_reads_a_bounded_number_of_queries(
    client, viewer, letters, django_assert_max_num_queries
):
    client.force_login(viewer)
    first = client.get("/deadletters/")
    assert first.status_code == 200
    with django_assert_max_num_queries(6):
        again = client.get("/deadletters/")
    assert pending_cells(again.content.decode()) == ["5"] * GROUPS


@pytest.mark.django_db
@pytest.mark.parametrize("view", ["", "?view=rows"])
def test_a_kept_inbox_page_renders_in_the_event_loop_and_counts_again_after_a_change(
    client, operator, letters, monkeypatch, view
):
    """A page of groups or rows kept for the letters' stamp renders in the event loop after
    one read of the stamp (the user's role with the cached user); a letter written by
    another process (no signal) changes the stamp and the next view counts again."""
    from dashboard.deadletters.views import inbox as inbox_views

    in_thread: list[str] = []
    real = inbox_views._inbox_page

    def counted(*args: Any) -> Any:
        in_thread.append(view)
        return real(*args)

    monkeypatch.setattr(inbox_views, "_inbox_page", counted)
    client.force_login(operator)
    url = "/deadletters/" + view
    first = client.get(url).content.decode()
    assert in_thread == [view]
    with CaptureQueriesContext(connection) as queries:
        again = client.get(url).content.decode()
    assert in_thread == [view], "rendered in a thread although the page was kept"
    assert len(queries.captured_queries) == 2, queries.captured_queries  # the stamp only
    assert again.count("<tr") == first.count("<tr") > GROUPS
    if not view:
        assert pending_cells(again) == ["5"] * GROUPS
        assert 'class="group-requeue"' in again  # the operator's actions, from the kept role
    seed(per_group=1, tag="more")  # bulk_create: no signal, as the collector's capture
    counted_again = client.get(url).content.decode()
    assert in_thread == [view, view]
    if not view:
        assert pending_cells(counted_again) == ["6"] * GROUPS
    else:
        assert counted_again.count("<tr") > first.count("<tr")


@pytest.mark.django_db
def test_the_health_api_reads_a_bounded_number_of_queries(
    client, viewer, use_clusters, django_assert_max_num_queries
):
    client.force_login(viewer)
    client.get("/api/clusters/health")
    with django_assert_max_num_queries(3):
        data = client.get("/api/clusters/health").json()
    assert {c["slug"] for c in data["clusters"]} == {"test-rabbitmq", "test-kafka"}


def group_counts() -> dict[str, int]:
    from dashboard.deadletters.inbox import InboxFilter, inbox_groups

    return {g["fingerprint"]: g["pending"] for g in inbox_groups(InboxFilter()).object_list}


@pytest.mark.django_db
def test_reused_counts_follow_every_change_of_the_letters(letters):
    assert group_counts() == {f"{g:032x}": 5 for g in range(GROUPS)}
    a, b = letters[0], letters[5]  # groups 0 and 1
    DeadLetter.objects.filter(pk=a.pk).update(status=DeadLetter.Status.DISCARDED)
    assert group_counts()[a.fingerprint] == 4
    # Two letters trading statuses keep every count per status: the ids tell them apart.
    DeadLetter.objects.filter(pk=a.pk).update(status=DeadLetter.Status.PENDING)
    DeadLetter.objects.filter(pk=b.pk).update(status=DeadLetter.Status.DISCARDED)
    counts = group_counts()
    assert (counts[a.fingerprint], counts[b.fingerprint]) == (5, 4)
    DeadLetter.objects.filter(pk=b.pk).delete()
    cluster = clusters.sync_cluster_rows()["test-rabbitmq"]
    DeadLetter.objects.create(
        cluster=cluster, dlq="orders.dlq", capture_key="new", fingerprint="f" * 32
    )
    counts = group_counts()
    assert counts[b.fingerprint] == 4 and counts["f" * 32] == 1


@pytest.mark.django_db
def test_the_json_inbox_reuses_counts_and_follows_changes(client, viewer, letters):
    client.force_login(viewer)

    def pending() -> dict[str, int]:
        data = client.get("/api/deadletters/groups").json()
        return {g["fingerprint"]: g["pending"] for g in data["items"]}

    assert pending() == {f"{g:032x}": 5 for g in range(GROUPS)}
    # Only the letters' stamp is read again: the groups themselves are not counted again.
    with CaptureQueriesContext(connection) as queries:
        assert len(pending()) == GROUPS
    assert not [q["sql"] for q in queries.captured_queries if "fingerprint" in q["sql"]]
    DeadLetter.objects.filter(pk=letters[0].pk).update(status=DeadLetter.Status.DISCARDED)
    assert pending()[letters[0].fingerprint] == 4
    rows = client.get("/api/deadletters/letters").json()
    assert rows["count"] == GROUPS * 5
    DeadLetter.objects.filter(pk=letters[1].pk).delete()
    assert client.get("/api/deadletters/letters").json()["count"] == GROUPS * 5 - 1


@pytest.mark.django_db
def test_reused_counts_follow_poison_and_parked_flags(letters):
    from dashboard.deadletters.inbox import InboxFilter, inbox_groups

    def poison() -> int:
        return sum(g["poison_count"] for g in inbox_groups(InboxFilter()).object_list)

    assert poison() == 0
    DeadLetter.objects.filter(pk=letters[3].pk).update(poison=True)
    assert poison() == 1
    assert len(inbox_groups(InboxFilter(parked=True)).object_list) == 0
    DeadLetter.objects.filter(pk=letters[3].pk).update(parked=True)
    assert len(inbox_groups(InboxFilter(parked=True)).object_list) == 1


@pytest.mark.django_db
def test_a_zero_max_age_counts_every_time(letters, settings, django_assert_num_queries):
    settings.MQB_LETTER_COUNTS_MAX_AGE = 0
    group_counts()
    with django_assert_num_queries(2):  # the groups and their number: no stamp
        group_counts()


@pytest.mark.rabbitmq
async def test_many_reads_at_once_share_the_process_connections(use_clusters):
    amqp_before, http_before = connections_to(5672), connections_to(15672)
    broker = await connections.get_broker("test-rabbitmq")
    assert isinstance(broker, RabbitMQBroker)
    try:
        for _ in range(2):
            await asyncio.gather(
                *(broker.management_get("/api/overview") for _ in range(50)),
                *(connections.get_broker("test-rabbitmq") for _ in range(50)),
            )
        http = connections_to(15672) - http_before
        assert 1 <= len(http) <= POOL_SIZE
        # A third round reuses the same connections: none closed, none opened.
        await asyncio.gather(*(broker.management_get("/api/overview") for _ in range(50)))
        assert connections_to(15672) - http_before == http
        assert len(connections_to(5672) - amqp_before) == 1
    finally:
        await connections.close_all()


@pytest.mark.rabbitmq
async def test_sync_code_under_the_server_loop_gets_the_same_adapter(use_clusters):
    """A sync view runs in a thread and reaches brokers through async_to_sync: that runs
    on the server's loop, so it shares the loop's adapter instead of making its own."""
    amqp_before = connections_to(5672)
    try:
        broker = await connections.get_broker("test-rabbitmq")
        from_sync = await sync_to_async(
            lambda: [async_to_sync(connections.get_broker)("test-rabbitmq") for _ in range(20)]
        )()
        assert all(b is broker for b in from_sync)
        assert len(connections_to(5672) - amqp_before) == 1
    finally:
        await connections.close_all()


@pytest.mark.django_db
def test_reused_group_rows_carry_each_operators_own_csrf_token(operator, letters):
    from django.test import Client

    for _ in range(2):  # the second page reuses the rows the first one rendered
        client = Client(enforce_csrf_checks=True)
        client.force_login(operator)
        page = client.get("/deadletters/").content.decode()
        form = page.split('<form method="post" class="group-requeue"')[1].split("</form>")[0]
        token = form.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
        assert token != "mqb-csrf-slot"
        group = form.split('name="group" value="')[1].split('"')[0]
        response = client.post(
            "/deadletters/requeue-bulk",
            {"csrfmiddlewaretoken": token, "group": group, "cluster": "test-rabbitmq"},
        )
        assert response.status_code == 303


@pytest.mark.django_db
def test_the_inbox_and_overview_offer_actions_by_the_cached_role(client, operator, letters):
    """What a page offers comes from the role cached with the user (no groups query); the
    header shows it too. Demotions drop the cached user (test_request_floor.py)."""
    collect_once()
    client.force_login(operator)
    client.get("/deadletters/")
    client.get("/")
    for url, offered in (("/deadletters/", 'class="group-requeue"'), ("/", "check-form")):
        with CaptureQueriesContext(connection) as queries:
            page = client.get(url).content.decode()
        assert offered in page, url
        assert not [q for q in queries.captured_queries if "auth_user_groups" in q["sql"]], url


def test_a_stamp_read_is_shared_only_by_those_who_asked_before_it_started():
    reads: list[int] = []
    entered, release = threading.Event(), threading.Event()

    def read() -> tuple[int]:
        reads.append(len(reads) + 1)
        if len(reads) == 1:
            entered.set()
            release.wait(30)
        return (reads[-1],)

    shared = letter_counts.SharedStamp(read)
    got: dict[str, tuple[Any, ...]] = {}

    def ask(name: str) -> None:
        got[name] = shared.get()

    first = threading.Thread(target=ask, args=("first",))
    first.start()
    assert entered.wait(30)
    # Two more ask while the first read runs: it started too early for them.
    late = [threading.Thread(target=ask, args=(name,)) for name in ("second", "third")]
    for thread in late:
        thread.start()
    deadline = 300
    while shared._tickets < 4 and deadline:  # both have asked (and wait)
        threading.Event().wait(0.1)
        deadline -= 1
    release.set()
    for thread in (first, *late):
        thread.join(30)
    assert got["first"] == (1,)
    assert got["second"] == got["third"] == (2,)  # one read, started after both asked
    assert shared.get() == (3,)  # asking alone reads again: nothing is reused across time
    assert reads == [1, 2, 3]
