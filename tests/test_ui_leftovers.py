"""Loose ends of the pages, in Debian's Chromium against a real Daphne: the audit log in the
navigation, audit actions by their labels, dialogs that leave ``window.confirm`` alone, cluster
kinds by their labels and health as badges; the audit trail's filter indexes and the
fingerprint migration with the Django test database."""

from __future__ import annotations

import importlib
import re
import subprocess
import uuid
from urllib.parse import urlencode

import pytest
from django.apps import apps as global_apps
from django.db import connection

from dashboard.core import display
from dashboard.models import AuditEntry, Cluster, DeadLetter
from tests.conftest import PYTHON, ROOT

PASSWORD = "leftovers-admin-pass-5"

# Every action code the dashboard writes to the audit trail (grep: action=, audited(, KIND).
ACTIONS = [
    "deadletter.requeue",
    "deadletter.discard",
    "deadletter.discard_all",
    "deadletter.purge",
    "deadletter.release_stuck",
    "deadletter.retention",
    "deadletters.manage",
    "deadletters.release",
    "deadletters.requeue",
    "deadletters.requeue.finished",
    "deadletters.requeue.revived",
    "rabbitmq.move",
    "rabbitmq.move.finished",
    "rabbitmq.move.revived",
    "job.pause",
    "job.resume",
    "job.cancel",
    "rabbitmq.publish",
    "rabbitmq.purge",
    "rabbitmq.peek",
    "kafka.produce",
    "kafka.purge",
    "kafka.reset_offsets",
    "kafka.reset_offsets.preview",
]

SEED = """
import sys
import django
django.setup()
from dashboard.models import AuditEntry
tag = sys.argv[1]
for action in sys.argv[2:]:
    AuditEntry.objects.create(username=tag, action=action, target=f"{tag}-t", outcome="ok")
"""


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PYTHON, *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=90
    )
    return done.stdout


@pytest.fixture(scope="module")
def served_admin(served_db) -> str:
    """An admin-role user of the served database (not a superuser, as ensure_user makes it)."""
    username = f"lo-{uuid.uuid4().hex[:6]}"
    run({**served_db, "MQB_USER_PASSWORD": PASSWORD}, "manage.py", "ensure_user", username,
        "--role", "admin")  # fmt: skip
    return username


def log_in(browser, url: str, username: str, password: str):
    page = browser.new_page()
    page.goto(url + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(url + "/")
    return page


# -- the audit log in the navigation ---------------------------------------------------


@pytest.mark.browser
def test_admins_find_the_audit_log_in_the_navigation_and_operators_do_not(
    browser, daphne_url, served_admin
):
    page = log_in(browser, daphne_url, served_admin, PASSWORD)
    link = page.locator("#site-nav a", has_text="Audit log")
    assert link.count() == 1
    assert link.get_attribute("href") == "/audit/"
    links = page.locator("#site-nav a").all_inner_texts()
    assert links.index("Audit log") == links.index("Jobs") + 1, links
    link.click()
    page.wait_for_url(daphne_url + "/audit/")
    assert page.locator("h1").inner_text() == "Audit log"
    current = page.locator("#site-nav a[aria-current=page]")
    assert current.all_inner_texts() == ["Audit log"]
    page.close()

    page = log_in(browser, daphne_url, "olga", "browser-pass-1")
    assert page.locator("#site-nav a", has_text="Jobs").count() == 1
    assert page.locator("#site-nav a", has_text="Audit log").count() == 0
    assert page.locator("#site-nav a[href='/audit/']").count() == 0
    page.close()


# -- audit actions by their labels -------------------------------------------------------


@pytest.mark.browser
def test_the_audit_page_names_every_action_by_its_label(browser, daphne_url, served_db,
                                                        served_admin):  # fmt: skip
    tag = f"act-{uuid.uuid4().hex[:6]}"
    run(served_db, "-c", SEED, tag, *ACTIONS)
    page = log_in(browser, daphne_url, served_admin, PASSWORD)
    page.goto(f"{daphne_url}/audit/?{urlencode({'user': tag})}")
    rows = page.locator("#audit-rows tbody tr")
    assert rows.count() == len(ACTIONS)
    shown = {
        str(rows.nth(i).get_attribute("data-action")): rows.nth(i).locator("td").nth(2).inner_text()
        for i in range(rows.count())
    }
    assert shown["deadletter.requeue"] == "Dead-letter requeue"
    assert shown["rabbitmq.purge"] == "Queue purge"
    assert shown["kafka.reset_offsets"] == "Offset reset"
    # Every action has a registered label of its own, not its code read as words.
    registered = display.labels_for_browser()
    assert {a: shown[a] for a in ACTIONS if a not in registered} == {}
    assert {a: shown[a] for a in ACTIONS if shown[a] != registered[a][0]} == {}
    assert len(set(shown.values())) == len(ACTIONS), "two actions read the same"
    visible = page.inner_text("main")
    options = " ".join(page.locator("select[name=action] option").all_inner_texts())
    assert [a for a in ACTIONS if re.search(rf"(?<![\w.]){re.escape(a)}(?![\w.])", visible)] == []
    assert [a for a in ACTIONS if a in options] == []
    page.close()


@pytest.mark.django_db
def test_the_letter_page_and_the_admin_name_actions_by_their_labels(client, make_user):
    admin = make_user("lo-adm", "admin")
    cluster = Cluster.objects.create(slug="lo-rabbit", kind="rabbitmq", name="Lo rabbit")
    letter = DeadLetter.objects.create(
        cluster=cluster, dlq="d", capture_key="k1", body=b"{}", reason="rejected"
    )
    AuditEntry.objects.create(
        username="lo-adm", action="deadletter.requeue", target=f"deadletter:{letter.pk}",
        outcome="ok", cluster=cluster,
    )  # fmt: skip
    client.force_login(admin)
    detail = client.get(f"/deadletters/{letter.pk}/").content.decode()
    table = detail.split("Actions taken")[1]
    assert "Dead-letter requeue" in table
    assert ">deadletter.requeue<" not in table
    changelist = client.get("/admin/dashboard/auditentry/").content.decode()
    assert "Dead-letter requeue" in changelist
    filters = changelist.split('id="changelist-filter"')[1]
    assert "Dead-letter requeue</a>" in filters and ">deadletter.requeue</a>" not in filters


def test_every_action_the_app_writes_has_a_label():
    registered = display.labels_for_browser()
    assert [a for a in ACTIONS if a not in registered] == []


# -- the audit trail's filters use indexes --------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"user": "ada"}, "audit_user_time"),
        ({"action": "deadletter.requeue"}, "audit_action_time"),
        ({"cluster": "local-rabbitmq"}, "audit_cluster_time"),
    ],
)
def test_filtering_the_audit_trail_reads_an_index_of_its_filter(filters, index):
    from dashboard.auditlog import services

    page = services.filtered(services.parse_filters(filters))[: services.PAGE_SIZE]
    sql, params = page.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # On a near-empty table PostgreSQL rightly prefers a scan and a sort: ask
            # whether an index serves the query, in order, when both are priced out.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute("EXPLAIN " + sql, params)
            plan = " / ".join(str(row[0]).strip() for row in cursor.fetchall())
            assert f"using {index}" in plan, plan
            # Newest first from the index: its entries are in time order (SQLite's also
            # carry the id, the rowid; PostgreSQL's do not), so at most the entries of
            # one instant are ordered by id as they stream past (an incremental sort).
            assert re.search(r"(?<!Incremental )Sort  \(", plan) is None, plan
            return
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        plan = " / ".join(str(row[-1]) for row in cursor.fetchall())
    assert f"INDEX {index}" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # newest first straight from the index


# -- stored letters get today's fingerprints -----------------------------------------------


def stored(cluster: Cluster, dlq: str, key: str, info) -> DeadLetter:
    """A letter stored as capture stores it (``store.build_row``)."""
    from brokers.base.deadletters import CapturedLetter
    from dashboard.deadletters.store import CaptureTarget, build_row

    target = CaptureTarget(0, cluster.pk, cluster.slug, cluster.kind, "/", dlq)
    letter = CapturedLetter(dlq=dlq, vhost="/", capture_key=key, info=info, headers={},
                            properties={}, body=b"{}")  # fmt: skip
    return DeadLetter.objects.create(**build_row(target, letter, key))


@pytest.mark.django_db
def test_letters_stored_with_version_1_fingerprints_group_with_new_ones_after_the_migration(
    monkeypatch,
):
    from brokers.decode import fingerprint as rules
    from brokers.decode.metadata import amqp_failure_info, kafka_failure_info
    from dashboard.deadletters.inbox import InboxFilter, get_inbox_groups

    migration = importlib.import_module("dashboard.migrations.0011_deadletter_fingerprints_v2")
    rabbit = Cluster.objects.create(slug="fp-rabbit", kind="rabbitmq", name="Fp rabbit")
    kafka = Cluster.objects.create(slug="fp-kafka", kind="kafka", name="Fp kafka")

    def amqp(exception: str, queue: str = "orders"):
        x_death = {"count": 1, "reason": "rejected", "queue": queue, "exchange": "events",
                   "routing-keys": ["order.created"]}  # fmt: skip
        return amqp_failure_info({"x-death": [x_death], "x-exception": exception}, {}, dlq="dlq")

    def kafka_record(exception: bytes, earlier: bytes):
        headers = [("x-original-topic", b"payments"), ("x-exception", earlier),
                   ("x-original-topic", b"payments"), ("x-exception", exception)]  # fmt: skip
        return kafka_failure_info(headers, dlq="payments-dlq")

    # Version 1 kept the class's module and the numbers after letters.
    monkeypatch.setattr(rules, "VERSION", "1")
    monkeypatch.setattr(rules, "class_name", lambda name: name.strip())
    old = stored(rabbit, "dlq", "old", amqp("demo.payloads.InvalidPayload: SKU-X6 unknown"))
    old_kafka = stored(kafka, "payments-dlq", "k-old",
                       kafka_record(b"demo.Bad: order 1", b"demo.Early: step 2"))  # fmt: skip
    monkeypatch.undo()
    new = stored(rabbit, "dlq", "new", amqp("InvalidPayload: SKU-X20 unknown"))
    other = stored(rabbit, "dlq", "other", amqp("InvalidPayload: SKU-X20 unknown", "billing"))
    new_kafka = stored(
        kafka, "payments-dlq", "k-new", kafka_record(b"Bad: order 7", b"Early: step 3")
    )
    assert old.fingerprint != new.fingerprint
    before = dict(DeadLetter.objects.values_list("pk", "fingerprint"))

    migration.recompute(global_apps, None)

    after = dict(DeadLetter.objects.values_list("pk", "fingerprint"))
    assert after[old.pk] == after[new.pk] == before[new.pk]
    assert after[old_kafka.pk] == after[new_kafka.pk] == before[new_kafka.pk]
    assert after[other.pk] == before[other.pk] != after[new.pk], "another origin stays apart"
    [old_earlier] = DeadLetter.objects.get(pk=old_kafka.pk).failure_details["history"]
    [new_earlier] = DeadLetter.objects.get(pk=new_kafka.pk).failure_details["history"]
    assert old_earlier["fingerprint"] == new_earlier["fingerprint"]
    assert old_earlier["exception_class"] == "demo.Early", "the letter keeps the full class"
    groups = get_inbox_groups(InboxFilter(dlq="dlq")).object_list
    assert sorted(g["count"] for g in groups) == [1, 2]
    # Current rows are left as they are: a second run changes nothing.
    migration.recompute(global_apps, None)
    assert dict(DeadLetter.objects.values_list("pk", "fingerprint")) == after


# -- confirmation dialogs leave window.confirm alone ----------------------------------------

STATIC_JS = ROOT / "static" / "js"


def test_no_page_script_asks_window_confirm():
    callers = [
        f"{path.name}:{number}"
        for path in sorted(STATIC_JS.glob("*.js"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if not line.lstrip().startswith(("//", "*"))
        and re.search(r"(?<![\w.-])(window\.)?confirm\s*\(", line)
    ]
    assert callers == []


@pytest.mark.browser
def test_a_confirmed_dialog_does_not_rewrite_window_confirm(browser, daphne_url):
    page = log_in(browser, daphne_url, "olga", "browser-pass-1")
    page.evaluate(
        """() => {
          window.__seen = [];
          const own = window.confirm;
          const form = document.createElement('form');
          form.action = '/'; form.method = 'get'; form.dataset.confirm = 'Purge 3 messages?';
          const button = document.createElement('button');
          button.id = 'go'; button.name = 'purged'; button.value = '1';
          button.textContent = 'Purge';
          form.append(button);
          // A listener of the page's own sees the browser's window.confirm, untouched.
          form.addEventListener('submit', () => { window.__seen.push(window.confirm === own); });
          document.querySelector('main').append(form);
        }"""
    )
    page.click("#go")
    assert page.evaluate("window.__seen") == [], "nothing submits before the dialog answers"
    page.evaluate(
        """() => { document.querySelector('form[data-confirm] button').form
                     .addEventListener('submit', (e) => e.preventDefault()); }"""
    )
    page.locator("dialog[open] button.btn-primary").click()
    page.wait_for_function("() => window.__seen.length > 0")
    assert page.evaluate("window.__seen") == [True]
    page.close()


# -- cluster kinds by their labels, health as badges, before and after live updates --------


@pytest.fixture(scope="module")
def collector(served_db, daphne_url):
    from tests.support.metrics import base_env, collector_process, run_django, wait_for

    env = base_env(served_db)
    with collector_process(
        env, "--only", "metrics", "--only", "health", "--interval", "1", log_name="ui-leftovers"
    ) as process:
        # The row can exist before its first check is stored (the metrics sampler
        # mirrors clusters too): wait for the check the page shows.
        exists = "from dashboard.models import Cluster; import json; print(json.dumps("
        exists += "Cluster.objects.filter(slug='local-rabbitmq', last_checked_at__isnull=False)"
        exists += ".exists()))"
        wait_for(lambda: run_django(env, exists), timeout=60, what="the cluster's first check")
        yield process


def assert_badge(badge, code: str, text: str) -> None:
    assert badge.count() == 1
    assert "badge" in (badge.get_attribute("class") or "").split()
    assert badge.get_attribute("data-status") == code
    assert badge.inner_text() == text
    background = badge.evaluate("el => getComputedStyle(el).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent"), background


@pytest.mark.browser
@pytest.mark.rabbitmq
@pytest.mark.kafka
@pytest.mark.redis
def test_cluster_kinds_read_as_labels_and_health_as_badges_after_live_updates(
    browser, daphne_url, collector
):
    from tests.support.metrics import wait_for

    page = log_in(browser, daphne_url, "olga", "browser-pass-1")
    kinds = sorted(page.locator(".card .kind").all_inner_texts())
    assert kinds == ["Kafka", "RabbitMQ"]
    card = page.locator('.card[data-cluster="local-rabbitmq"]')
    assert_badge(card.locator('[data-field="status"] .badge'), "ok", "Healthy")
    checked = card.locator('[data-field="checked_at"] time')
    first = checked.get_attribute("datetime")
    wait_for(lambda: checked.get_attribute("datetime") != first, timeout=20, what="an update")
    assert_badge(card.locator('[data-field="status"] .badge'), "ok", "Healthy")
    assert page.locator("main .status").count() == 0

    page.goto(daphne_url + "/live/")
    assert sorted(page.locator(".card .kind").all_inner_texts()) == ["Kafka", "RabbitMQ"]
    card = page.locator('.card[data-cluster="local-rabbitmq"]')
    page.wait_for_function(
        "() => document.querySelector('.card[data-cluster=\"local-rabbitmq\"] time.when')",
        timeout=30_000,
    )
    sampled = card.locator("time.when").first
    first = sampled.get_attribute("datetime")
    wait_for(lambda: sampled.get_attribute("datetime") != first, timeout=20, what="a sample")
    assert_badge(card.locator('[data-role="cluster-status"] .badge'), "ok", "Sampled")
    assert page.locator("main .status").count() == 0

    page.goto(daphne_url + "/live/local-rabbitmq/")
    assert page.locator("h1 .kind").inner_text() == "RabbitMQ"
    assert_badge(page.locator('[data-role="cluster-status"] .badge'), "ok", "Sampled")
    page.close()
