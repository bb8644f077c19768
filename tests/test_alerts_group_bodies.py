"""A group's one message in every channel kind: a mail to a real local SMTP server
(aiosmtpd) and a Teams card to a real local HTTP receiver list every alert with its
notification id, under the message's own stable id."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from dashboard.alerts.channels import message_id
from dashboard.alerts.delivery import send_due
from dashboard.alerts.engine import evaluate
from dashboard.models import AlertChannel, AlertNotification, AlertRule, Cluster
from tests.conftest import free_port
from tests.support.alerts import queue_sample, receiver

pytestmark = pytest.mark.django_db(transaction=True)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.messages.append(message_from_bytes(envelope.original_content or b""))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


def fire_three(*channels: AlertChannel) -> list[str]:
    cluster = Cluster.objects.create(slug="alerts-bodies", kind="rabbitmq", name="Bodies")
    rule = AlertRule.objects.create(
        name="deep", kind=AlertRule.Kind.QUEUE_DEPTH, pattern="orders-*", threshold=10
    )
    rule.channels.add(*channels)
    depths: dict[str, int | None] = {"orders-a": 50, "orders-b": 60, "orders-c": 70}
    evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, depths))
    return list(AlertNotification.objects.order_by("pk").values_list("notification_id", flat=True))


def test_a_group_is_one_mail_listing_every_alert(smtp, monkeypatch):
    inbox, port = smtp
    monkeypatch.setenv("MQB_TEST_SMTP_URL", f"smtp://127.0.0.1:{port}/?from=mq@x.org&to=a@x.org")
    ids = fire_three(
        AlertChannel.objects.create(name="mail", kind="email", url_env="MQB_TEST_SMTP_URL")
    )
    assert send_due() == 3
    [mail] = inbox.messages
    assert mail["Subject"] == "[FIRING 3] deep on alerts-bodies"
    assert mail["X-Mqboard-Notification-Id"] == message_id(ids)
    assert mail["Message-ID"] == f"<{message_id(ids)}@mqboard>"
    text = mail.get_payload(decode=True).decode()
    for name, depth in (("orders-a", 50), ("orders-b", 60), ("orders-c", 70)):
        assert f"[FIRING] deep: %2F/{name} on alerts-bodies (value {depth})" in text
    for notification_id in ids:
        assert f"notification id: {notification_id}" in text


def test_a_group_is_one_teams_card_with_a_section_per_alert(monkeypatch):
    with receiver() as sink:
        monkeypatch.setenv("MQB_TEST_HOOK_URL", sink.url)
        ids = fire_three(
            AlertChannel.objects.create(name="teams", kind="teams", url_env="MQB_TEST_HOOK_URL")
        )
        assert send_due() == 3
        [got] = sink.wait_count(1)
    card = got.json()
    assert got.headers["X-Mqboard-Notification-Id"] == message_id(ids)
    assert card["title"] == "[FIRING 3] deep on alerts-bodies"
    assert [s["activityTitle"] for s in card["sections"]] == [
        f"[FIRING] deep: %2F/orders-{x} on alerts-bodies (value {v})"
        for x, v in (("a", 50), ("b", 60), ("c", 70))
    ]
