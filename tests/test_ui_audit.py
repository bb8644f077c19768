"""The audit log page, the Django admin for the admin role, the live tail's edges and the
consumers page's client column, in Debian's Chromium against a real Daphne and real brokers;
the CSV export with the Django client (escaping, filters, roles)."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboard.models import AuditEntry, Cluster, DeadLetter
from tests.conftest import PYTHON, ROOT
from tests.support.rabbitmq import bind, declare, mgmt, q, unique

PASSWORD = "audit-admin-pass-3"
UTC_TEXT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")

SEED = """
import sys
import django
django.setup()
from dashboard.models import AuditEntry, Cluster, Job
from django.contrib.auth.models import User
tag = sys.argv[1]
cluster = Cluster.objects.filter(slug="local-rabbitmq").first()
for i in range(60):
    AuditEntry.objects.create(
        username=tag, action="queue.purge", target=f"{tag}-q{i}", outcome="ok", cluster=cluster,
    )
AuditEntry.objects.create(
    username=tag, action="deadletter.requeue", target="=HYPERLINK(\\"http://evil\\")",
    outcome="refused", detail="needs the operator role", client_ip="10.1.2.3",
)
Job.objects.create(kind="deadletters.requeue", parameters={"source": tag})
"""


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PYTHON, *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=90
    )
    return done.stdout


@pytest.fixture(scope="module")
def served_admin(served_db) -> str:
    """An admin-role user of the served database, not a superuser (as ensure_user makes it)."""
    username = f"aud-{uuid.uuid4().hex[:6]}"
    env = {**served_db, "MQB_USER_PASSWORD": PASSWORD}
    run(env, "manage.py", "ensure_user", username, "--role", "admin")
    return username


@pytest.fixture(scope="module")
def seeded(served_db, served_admin, daphne_url) -> str:
    """60 ordinary entries and one refused requeue with a formula target, tagged by user."""
    tag = f"who-{uuid.uuid4().hex[:6]}"
    run(served_db, "-c", SEED, tag)
    return tag


def log_in(browser, url: str, username: str, password: str):
    page = browser.new_page()
    page.goto(url + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    return page


# -- the audit log page -------------------------------------------------------------


@pytest.mark.browser
def test_admins_read_filter_and_export_the_audit_log(browser, daphne_url, served_admin, seeded):
    page = log_in(browser, daphne_url, served_admin, PASSWORD)
    page.goto(f"{daphne_url}/audit/?{urlencode({'user': seeded})}")
    assert page.locator("h1").inner_text() == "Audit log"
    rows = page.locator("#audit-rows tbody tr")
    assert rows.count() == 50, "one page of 50"
    first = rows.first
    assert "HYPERLINK" in first.inner_text(), "newest first"
    badge = first.locator(".badge[data-status=refused]")
    assert badge.inner_text() == "Refused"
    assert UTC_TEXT.match(first.locator("time.when").inner_text())
    page.click("a[rel=next]")
    page.wait_for_load_state()
    assert page.locator("#audit-rows tbody tr").count() == 11, "the older 11 on page two"
    assert "q0" in page.locator("#audit-rows tbody tr").last.inner_text()

    page.goto(f"{daphne_url}/audit/?{urlencode({'user': seeded})}")
    page.select_option("select[name=outcome]", "refused")
    page.click("#audit-filters button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#audit-rows tbody tr").count() == 1
    with page.expect_download() as download:
        page.click("a[data-role=csv]")
    text = open(download.value.path(), encoding="utf-8").read()  # noqa: SIM115
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][:3] == ["time", "user", "action"]
    assert len(table) == 2
    assert table[1][table[0].index("target")] == '\'=HYPERLINK("http://evil")'
    page.close()


@pytest.mark.browser
def test_operators_get_403_on_the_audit_log(browser, daphne_url, seeded):
    page = log_in(browser, daphne_url, "olga", "browser-pass-1")
    answer = page.goto(f"{daphne_url}/audit/")
    assert answer is not None and answer.status == 403
    export = page.request.get(f"{daphne_url}/audit/export.csv")
    assert export.status == 403
    assert seeded not in export.text()
    page.close()


# -- the Django admin as an admin-role user --------------------------------------------


@pytest.mark.browser
def test_the_admin_shows_labels_and_one_time_format_to_the_admin_role(
    browser, daphne_url, served_admin, seeded
):
    page = browser.new_page()
    page.goto(daphne_url + "/admin/login/")
    page.fill("input[name=username]", served_admin)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(daphne_url + "/admin/")
    assert "permission" not in page.inner_text("#content")

    page.goto(f"{daphne_url}/admin/dashboard/job/?kind=deadletters.requeue")
    jobs = page.inner_text("#result_list")
    assert "deadletters.requeue" not in jobs, "a job kind by its title, not its code"
    assert "Requeue dead letters" in jobs
    created = page.locator("#result_list td.field-created").first.inner_text()
    assert UTC_TEXT.match(created), created

    page.goto(f"{daphne_url}/admin/dashboard/auditentry/?q={seeded}")
    entries = page.inner_text("#result_list")
    assert "queue.purge" not in entries and "Queue purge" in entries
    when = page.locator("#result_list th.field-when, #result_list td.field-when").first
    assert UTC_TEXT.match(when.inner_text()), when.inner_text()
    page.close()


@pytest.mark.browser
def test_every_admin_page_opens_for_the_admin_role(browser, daphne_url, served_admin, seeded):
    page = browser.new_page()
    page.goto(daphne_url + "/admin/login/")
    page.fill("input[name=username]", served_admin)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(daphne_url + "/admin/")
    lists = page.eval_on_selector_all(
        "#content-main a[href$='/']", "links => links.map(a => a.getAttribute('href'))"
    )
    lists = sorted({href for href in lists if href.count("/") == 4})
    assert "/admin/dashboard/auditentry/" in lists and "/admin/dashboard/job/" in lists
    for href in lists:
        answer = page.goto(daphne_url + href)
        assert answer is not None and answer.status == 200, href
        assert "permission" not in page.inner_text("#content"), href
        change = page.locator("#result_list tbody a[href*='/change/']").first
        if change.count():
            target = str(change.get_attribute("href"))
            opened = page.goto(daphne_url + target)
            assert opened is not None and opened.status == 200, target
    page.close()


@pytest.mark.django_db
def test_the_dead_letter_admin_list_does_not_load_bodies(client, make_user):
    admin = make_user("adm-role", "admin")
    admin.is_superuser = False
    admin.save()
    cluster = Cluster.objects.create(slug="adm-list", kind="rabbitmq", name="Adm list")
    for i in range(3):
        DeadLetter.objects.create(
            cluster=cluster, dlq="d", capture_key=f"k{i}", body=b"x" * 100_000, reason="rejected"
        )
    client.force_login(admin)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/admin/dashboard/deadletter/")
    assert page.status_code == 200
    listing = [
        s["sql"] for s in queries.captured_queries if '"dashboard_deadletter"."dlq"' in s["sql"]
    ]
    assert listing and not any('"dashboard_deadletter"."body"' in s for s in listing)
    assert "Rejected" in page.content.decode()


# -- the CSV export (Django client) --------------------------------------------------


@pytest.fixture
def entries(db) -> list[AuditEntry]:
    cluster = Cluster.objects.create(slug="csv-c", kind="kafka", name="CSV")
    made = [
        AuditEntry.objects.create(
            username="ann", action="topic.purge", target="=1+2", outcome="ok", cluster=cluster
        ),
        AuditEntry.objects.create(
            username="bob", action="queue.purge", target="+cmd", outcome="failed", detail="@SUM(A1)"
        ),
        AuditEntry.objects.create(
            username="ann",
            action="queue.purge",
            target="-2",
            outcome="refused",
            detail='say "hi",\nthen go',
            parameters={"x": "=y"},
        ),
    ]
    old = AuditEntry.objects.create(username="old", action="queue.purge", outcome="ok")
    AuditEntry.objects.filter(pk=old.pk).update(time=datetime.now(UTC) - timedelta(days=10))
    return made


def export(client, **filters: str) -> list[dict[str, str]]:
    response = client.get("/audit/export.csv", filters)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_escapes_formulas_and_quotes(client, admin_user_, entries):
    client.force_login(admin_user_)
    rows = export(client)
    by_target = {r["target"]: r for r in rows}
    assert set(by_target) >= {"'=1+2", "'+cmd", "'-2"}
    assert by_target["'+cmd"]["detail"] == "'@SUM(A1)"
    assert by_target["'-2"]["detail"] == 'say "hi",\nthen go'
    assert by_target["'-2"]["parameters"] == '{"x": "=y"}'
    assert by_target["'=1+2"]["cluster"] == "csv-c"
    assert [r["user"] for r in rows][:3] == ["ann", "bob", "ann"][::-1], "newest first"


def test_the_csv_takes_the_pages_filters(client, admin_user_, entries):
    client.force_login(admin_user_)
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert {r["target"] for r in export(client, user="ann")} == {"'=1+2", "'-2"}
    assert [r["target"] for r in export(client, action="topic.purge")] == ["'=1+2"]
    assert [r["target"] for r in export(client, cluster="csv-c")] == ["'=1+2"]
    assert [r["target"] for r in export(client, outcome="failed")] == ["'+cmd"]
    assert {r["user"] for r in export(client, **{"from": since})} == {"ann", "bob"}
    until = (datetime.now(UTC) - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M")
    assert [r["user"] for r in export(client, to=until)] == ["old"]


def test_a_bad_filter_is_a_400_not_a_crash(client, admin_user_, entries):
    client.force_login(admin_user_)
    assert client.get("/audit/", {"from": "yesterday"}).status_code == 400
    assert client.get("/audit/", {"before": "zzz"}).status_code == 400


def test_viewers_and_operators_get_403(client, viewer, operator, entries):
    for user in (viewer, operator):
        client.force_login(user)
        assert client.get("/audit/").status_code == 403
        assert client.get("/audit/export.csv").status_code == 403


def test_the_page_stays_index_friendly(client, admin_user_, entries):
    client.force_login(admin_user_)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/audit/", {"user": "ann"})
    assert page.status_code == 200
    listing = [s["sql"] for s in queries.captured_queries if "dashboard_auditentry" in s["sql"]]
    assert not any("OFFSET" in s for s in listing), "keyset, never OFFSET"
    assert any("LIMIT 51" in s for s in listing), "one page and one row to know of the next"


# -- the live tail --------------------------------------------------------------------


def queue_url(base: str, vhost: str, name: str) -> str:
    return f"{base}/rabbitmq/local-rabbitmq/queue?{urlencode({'vhost': vhost, 'name': name})}"


@pytest.mark.browser
@pytest.mark.rabbitmq
def test_the_tail_before_start_never_says_at_most_question_mark(
    browser, daphne_url, rabbitmq_vhost
):
    name = unique("ui-tail")
    declare(rabbitmq_vhost, name)
    page = log_in(browser, daphne_url, "olga", "browser-pass-1")
    page.goto(queue_url(daphne_url, rabbitmq_vhost, name))
    counts = page.locator("[data-tail] .mqb-tail-counts").inner_text()
    assert "?" not in counts, "no unknown limit"
    assert "at most" not in counts, "the limit is said once the server tells it"
    page.close()


@pytest.mark.browser
@pytest.mark.rabbitmq
def test_the_tail_scrolls_in_a_fixed_box_and_keeps_stamps_in_their_column(
    browser, daphne_url, rabbitmq_vhost
):
    name = unique("ui-tail")
    declare(rabbitmq_vhost, name)
    bind(rabbitmq_vhost, "amq.topic", name, name)
    page = log_in(browser, daphne_url, "olga", "browser-pass-1")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(queue_url(daphne_url, rabbitmq_vhost, name))
    stop = threading.Event()

    def send() -> None:
        with mgmt() as http:
            while not stop.is_set():
                http.post(
                    f"/api/exchanges/{q(rabbitmq_vhost)}/amq.topic/publish",
                    json={
                        "properties": {"timestamp": 1796550333, "message_id": "m"},
                        "routing_key": name,
                        "payload": '{"line": "one"}\n' * 4,
                        "payload_encoding": "string",
                    },
                ).raise_for_status()
                stop.wait(0.05)

    threading.Thread(target=send, daemon=True).start()
    try:
        page.click("[data-tail] [data-role=toggle]")
        page.wait_for_function(
            "() => Number(document.querySelector('[data-tail]').dataset.shown) >= 40",
            timeout=30_000,
        )
    finally:
        stop.set()
    counts = page.locator("[data-tail] .mqb-tail-counts").inner_text()
    assert re.search(r"at most \d+ messages per second", counts), counts
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 3000, f"the page does not grow with the messages ({height} px)"
    stamp = page.evaluate(
        """() => { const cell = document.querySelector('[data-tail] tbody tr td');
        const span = [...cell.querySelectorAll('.meta')]
          .find(s => s.textContent.startsWith('stamped'));
        const range = document.createRange(); range.selectNodeContents(span);
        const text = range.getBoundingClientRect(), box = cell.getBoundingClientRect();
        return {text: span.textContent, right: text.right, cellRight: box.right,
                overflow: span.scrollWidth - span.clientWidth}; }"""
    )
    assert stamp["right"] <= stamp["cellRight"] + 0.5, f"the stamp stays in its column: {stamp}"
    assert stamp["overflow"] <= 0, stamp
    box = page.evaluate(
        """() => { const s = document.querySelector('[data-tail] [data-role=scroller]');
        return {client: s.clientHeight, scroll: s.scrollHeight,
                overflow: getComputedStyle(s).overflowY}; }"""
    )
    assert box["overflow"] in ("auto", "scroll")
    assert box["scroll"] > box["client"] > 0, "the messages scroll inside the box"
    page.close()


# -- the consumers page ---------------------------------------------------------------

CONSUME = """
import asyncio, sys
import aiormq
import django
django.setup()
from brokers.rabbitmq import RabbitMQBroker
from brokers.rabbitmq.sampler import RabbitMQSampler
from dashboard.collector.consumers_tracking import ConsumerTracker
from dashboard.core.clusters import get_cluster_config, sync_cluster_rows

async def main(vhost, name):
    from urllib.parse import quote
    connection = await aiormq.connect(f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}")
    channel = await connection.channel()
    await channel.queue_declare(name)
    await channel.basic_consume(name, lambda m: None)
    config = get_cluster_config("local-rabbitmq")
    broker, sampler = RabbitMQBroker(config), RabbitMQSampler(config)
    row = await asyncio.to_thread(lambda: sync_cluster_rows()["local-rabbitmq"])
    for _ in range(60):
        sample = await sampler.full(broker, vhost=vhost)
        mine = [c for c in sample.consumers or () if name in c.source]
        if mine:
            await asyncio.to_thread(ConsumerTracker(row.pk).record, mine, sample.time)
            print(mine[0].client)
            break
        await asyncio.sleep(1)
    await broker.close()
    await connection.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.browser
@pytest.mark.rabbitmq
def test_the_consumers_page_shows_the_client_address_once(
    browser, daphne_url, served_db, rabbitmq_vhost
):
    name = unique("ui-consumed")
    client = run(served_db, "-c", CONSUME, rabbitmq_vhost, name).strip().splitlines()[-1]
    address = client.split(" -> ")[0]
    page = log_in(browser, daphne_url, "olga", "browser-pass-1")
    page.goto(f"{daphne_url}/consumers/?{urlencode({'q': name})}")
    row = page.locator("#consumer-rows tbody tr", has_text=name).first
    text = row.inner_text()
    assert text.count(address) == 1, text
    assert "ctag" in text and "channel (1)" in text, "the consumer still named by its tag"
    page.close()


# -- the JSON API ---------------------------------------------------------------------


def test_the_api_pages_the_trail_for_admins_only(client, admin_user_, operator, entries):
    client.force_login(admin_user_)
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    answer = client.get("/api/audit", {"user": "ann", "from": since})
    assert answer.status_code == 200
    body = answer.json()
    assert [e["target"] for e in body["entries"]] == ["-2", "=1+2"], "raw in JSON, newest first"
    assert body["next"] is None
    assert body["entries"][1]["cluster"] == "csv-c"
    assert client.get("/api/audit", {"from": "soon"}).json()["code"] == "invalid"
    # An offset PostgreSQL refuses (beyond 15:59) reaches it in UTC; the year 10000 is refused.
    far = (datetime.now(UTC) - timedelta(days=1)).astimezone(timezone(timedelta(hours=-19)))
    answer = client.get("/api/audit", {"user": "ann", "from": far.isoformat()})
    assert answer.status_code == 200, answer.content
    assert [e["target"] for e in answer.json()["entries"]] == ["-2", "=1+2"]
    assert client.get("/api/audit", {"to": "9999-12-31T23:00-05:00"}).status_code == 400
    client.force_login(operator)
    assert client.get("/api/audit").status_code == 403


def test_the_time_filters_read_and_show_utc(client, admin_user_, entries, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    client.force_login(admin_user_)
    page = client.get("/audit/", {"from": "2026-12-01T10:00+02:00", "to": "2026-12-02T10:00"})
    html = page.content.decode()
    assert 'name="from" value="2026-12-01T08:00"' in html
    assert 'name="to" value="2026-12-02T10:00"' in html
