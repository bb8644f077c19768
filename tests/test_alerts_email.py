"""Email notifications against a real local SMTP server (aiosmtpd): delivered with the
notification id as Message-ID, the SMTP URL (and its password) only from a file, and a
server that refuses gets retries."""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from django.utils import timezone

from dashboard.alerts.delivery import send_due
from dashboard.alerts.engine import evaluate
from dashboard.models import AlertChannel, AlertNotification, AlertRule, Cluster
from tests.conftest import free_port
from tests.support.alerts import queue_sample

pytestmark = pytest.mark.django_db(transaction=True)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []
        self.refuse = 0

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.refuse:
            self.refuse -= 1
            return "451 try again later"
        self.messages.append((envelope, message_from_bytes(envelope.original_content or b"")))
        return "250 OK"


def authenticate(
    server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"alerts", b"p@ss")
    return AuthResult(success=ok)


@pytest.fixture
def smtp() -> Any:
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


def fire(channel: AlertChannel) -> None:
    cluster = Cluster.objects.create(slug="alerts-mail", kind="rabbitmq", name="Mail")
    rule = AlertRule.objects.create(
        name="deep", kind=AlertRule.Kind.QUEUE_DEPTH, pattern="orders", threshold=10
    )
    rule.channels.add(channel)
    evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, {"orders": 50}), timezone.now())


def test_it_mails_a_notification_with_its_id(smtp, tmp_path):
    inbox, port = smtp
    url_file = tmp_path / "smtp-url"
    url_file.write_text(
        f"smtp://alerts:p%40ss@127.0.0.1:{port}/?from=mq@example.com&to=a@example.com,b@example.com"
    )
    fire(AlertChannel.objects.create(name="mail", kind="email", url_file=str(url_file)))
    assert send_due() == 1
    [(envelope, message)] = inbox.messages
    row = AlertNotification.objects.get()
    assert envelope.rcpt_tos == ["a@example.com", "b@example.com"]
    assert message["Message-ID"] == f"<{row.notification_id}@mqboard>"
    assert message["X-Mqboard-Notification-Id"] == row.notification_id
    assert message["Subject"] == "[FIRING] deep: %2F/orders on alerts-mail (value 50)"
    assert "p@ss" not in str(row.payload)


def test_a_refusing_server_or_a_wrong_password_is_retried(smtp, monkeypatch):
    inbox, port = smtp
    monkeypatch.setenv(
        "MQB_TEST_SMTP_URL", f"smtp://alerts:wrong@127.0.0.1:{port}/?from=mq@x.org&to=a@x.org"
    )
    fire(AlertChannel.objects.create(name="mail", kind="email", url_env="MQB_TEST_SMTP_URL"))
    assert send_due() == 0
    row = AlertNotification.objects.get()
    assert row.sent_at is None and row.gave_up_at is None and row.last_error
    assert "wrong" not in row.last_error, "the error never holds the password"
    monkeypatch.setenv(
        "MQB_TEST_SMTP_URL", f"smtp://alerts:p%40ss@127.0.0.1:{port}/?from=mq@x.org&to=a@x.org"
    )
    inbox.refuse = 1
    AlertNotification.objects.update(next_attempt_at=timezone.now())
    assert send_due() == 0
    assert AlertNotification.objects.get().last_error == "the SMTP server answered 451"
    AlertNotification.objects.update(next_attempt_at=timezone.now())
    assert send_due() == 1 and len(inbox.messages) == 1
    assert AlertNotification.objects.get().attempts == 3


def test_an_smtp_url_without_recipients_is_given_up(monkeypatch):
    monkeypatch.setenv("MQB_TEST_SMTP_URL", "smtp://127.0.0.1:25/?from=mq@x.org")
    fire(AlertChannel.objects.create(name="mail", kind="email", url_env="MQB_TEST_SMTP_URL"))
    assert send_due() == 0
    row = AlertNotification.objects.get()
    assert row.gave_up_at is not None and "to=" in row.last_error
