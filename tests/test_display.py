"""The one formatter for labels, times and numbers (dashboard.core.display) and its tags."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

from django.template import Context, Template

from dashboard.core import display


def test_labels_come_from_the_models_and_unknown_codes_read_as_words():
    assert display.label("failed_again") == "Failed again"
    assert display.label("requeuing") == "Being requeued"
    assert display.label("done") == "Done"
    assert display.label("some_new.code") == "Some new code"
    assert display.tone("failed_again") == display.DANGER
    assert display.tone("never-registered") == display.MUTED


def test_numbers_have_three_significant_digits_and_their_unit():
    assert display.rate(4.999) == "5/s"
    assert display.rate(5.6) == "5.6/s"
    assert display.rate(12.34) == "12.3/s"
    assert display.rate(0.0) == "0/s"
    assert display.count(1234567) == "1,234,567"
    assert display.count(None) == display.NONE
    assert display.duration(4149) == "1 h 9 min"
    assert display.duration(2.5) == "2.5 s"
    assert display.size(10 * 1024 * 1024) == "10 MiB"
    assert display.size(512) == "512 B"


def test_times_are_utc_in_the_page_whatever_their_zone():
    moment = datetime(2026, 12, 6, 7, 11, 45, tzinfo=timezone(timedelta(hours=2)))
    assert display.utc_text(moment) == "2026-12-06 05:11:45 UTC"
    assert display.iso(moment) == "2026-12-06T05:11:45Z"


def test_the_tags_escape_and_mark_up_badges_and_times():
    html = Template("{% load ui %}{% badge code %} {% when at age=True %} {{ n|rate }}").render(
        Context({"code": "<x>", "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "n": 5.0})
    )
    assert '<span class="badge badge-muted" data-status="&lt;x&gt;">&lt;x&gt;</span>' in html
    assert '<time class="when" datetime="2026-01-02T03:04:05Z"' in html and "data-age" in html
    assert html.endswith(" 5/s")


def test_every_dead_letter_audit_action_has_a_label_of_its_own():
    codes = [
        "deadletters.schedule",
        "deadletters.schedule_cancel",
        "deadletters.schedule_now",
        "deadletters.schedule_send",
        "deadletters.preview",
        "deadletters.policy_create",
        "deadletters.policy_update",
        "deadletters.policy_mode",
        "deadletters.policy_move",
        "deadletters.policy_delete",
        "deadletters.redirect_create",
        "deadletters.redirect_update",
        "deadletters.redirect_delete",
    ]
    labels = [display.label(code) for code in codes]
    # Not the words of the code ("Deadletters schedule cancel"), and no two alike.
    assert not [text for text in labels if text.startswith(("Deadletter ", "Deadletters "))]
    assert len(set(labels)) == len(labels), labels


def test_a_backoff_reads_the_same_everywhere():
    words = "first gap 1 min, \u00d72 each step, at most 1 h, \u00b110% jitter"
    assert display.backoff(60, 2.0, 3600, 0.1) == words
    assert display.backoff(5, 1, 5, 0, lead="first after") == "first after 5 s"
    assert display.backoff(1.5, 2.5, 30) == "first gap 1.5 s, \u00d72.5 each step, at most 30 s"


def test_the_label_script_is_made_once_and_again_after_a_new_label():
    first = display.labels_script()
    assert display.labels_script() is first
    found = re.fullmatch(r'<script id="mqb-labels" type="application/json">(.*)</script>', first)
    assert found and json.loads(found[1]) == display.labels_for_browser()
    try:
        display.register("test-script-code", "<Made> here", display.WARN)
        again = display.labels_script()
        assert again is not first
        assert "\\u003CMade\\u003E here" in again and "<Made>" not in again
    finally:
        display._LABELS.pop("test-script-code", None)
        display._TONES.pop("test-script-code", None)
        display._labels_script = None
