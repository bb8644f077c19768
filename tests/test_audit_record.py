"""``audit.record`` stores what it is given on every database, NUL and lone surrogates included."""

from __future__ import annotations

import pytest

from dashboard.core.audit import record
from dashboard.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_it_stores_nul_from_broker_or_user_text_as_the_replacement_character():
    entry = record(
        action="kafka.produce",
        user=None,
        target="topic:t\x00",
        parameters={"key": "\x00\x01", "headers": ["h\x00"], "k\x00": 1, "size": None},
        detail="failed at \x00",
    )
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.target == "topic:t\ufffd"
    assert stored.parameters == {
        "key": "\ufffd\x01", "headers": ["h\ufffd"], "k\ufffd": 1, "size": None
    }  # fmt: skip
    assert stored.detail == "failed at \ufffd"


def test_it_stores_a_lone_surrogate_from_user_text_as_the_replacement_character():
    # A request's JSON may carry "\ud800": valid JSON, not UTF-8, refused by jsonb.
    entry = record(
        action="rabbitmq.publish",
        user=None,
        target="queue '\udc00' in vhost '\ud800'",
        parameters={"vhost": "\ud800", "names": ["a\udfffb"], "\ud83d": "\U0001f600"},
        detail="vhost: not valid UTF-8 (\ud800)",
    )
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.target == "queue '\ufffd' in vhost '\ufffd'"
    assert stored.parameters == {"vhost": "\ufffd", "names": ["a\ufffdb"], "\ufffd": "\U0001f600"}
    assert stored.detail == "vhost: not valid UTF-8 (\ufffd)"
