"""The sender: empties the notification outbox, at least once, with backoff, in groups.

:func:`send_due` takes the (channel, group) pairs with a due row; per pair,
:func:`claim` holds every due row of that group (one rule on one cluster, see
``engine.group_key``) to that channel with one conditional UPDATE (unsent, not given
up, due, and unclaimed or with an expired claim) that also counts the attempt, holds
the rows for ``MQB_ALERTS_SEND_LEASE`` seconds and marks them with a claim token;
then it sends them as ONE message (``channels.group_message``: firing and resolved
sections, the message's own stable id in ``X-Mqboard-Notification-Id``, every
notification's own id in the body) as a request (``channels.build_request``,
``MQB_ALERTS_SEND_TIMEOUT``) or a mail (``channels.send_email``). A 2xx answer (a
mail the SMTP server accepted) marks every row of the message sent. Anything else (a
refused connection, a timeout, a non-2xx answer) records ``last_error`` on the rows
and makes them due again after ``MQB_ALERTS_RETRY_BASE`` seconds doubling per attempt
up to ``MQB_ALERTS_RETRY_CAP``; after ``MQB_ALERTS_MAX_ATTEMPTS`` attempts, or on a
permanent error (a URL that does not fit the channel's kind, or cannot be parsed),
a row is given up.
When rows fall due is the engine's business (``engine.group_due``: group wait and
group interval); rows that joined a group in backoff go with its next try.

Channel health: after every message the channel's ``last_success_at`` (and
``consecutive_failures`` back to 0) or ``last_failure_at``, ``last_error`` (the
sender's own text: a status code, an exception's type, a variable's name; never the
URL, a token or a password) and ``consecutive_failures`` + 1 are written.

At least once: a row is unsent until a receiver answered 2xx and that was
committed. A sender killed (``kill -9``) mid-send leaves its claim to expire, and
the next sender sends the rows again, each with the same notification id (the
message's id is the same unless more rows of the group fell due meanwhile).

:class:`SenderThread` runs :func:`send_due` in the collector (started by the
hook on the first sample), every ``MQB_ALERTS_SEND_POLL`` seconds or as soon as
an evaluation wrote notifications (:func:`wake`). Several senders (two
collectors) are safe: a row is claimed by one at a time.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from dashboard.alerts.channels import ChannelError, build_request, group_message, send_email
from dashboard.models import AlertChannel, AlertNotification

log = logging.getLogger("dashboard.alerts.delivery")
BATCH = 100
GROUP_LIMIT = 500
"""Notifications in one message at most; the rest of a larger group go in the next."""


def backoff(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``."""
    base = float(settings.MQB_ALERTS_RETRY_BASE)
    return float(min(float(settings.MQB_ALERTS_RETRY_CAP), base * 2 ** max(0, attempts - 1)))


def _unclaimed(now: datetime) -> Q:
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)


def _waiting(now: datetime) -> QuerySet[AlertNotification]:
    return AlertNotification.objects.filter(
        _unclaimed(now), sent_at__isnull=True, gave_up_at__isnull=True, next_attempt_at__lte=now
    )


def due(now: datetime) -> list[tuple[int, str]]:
    """The (channel, group) pairs with a due notification, the longest due first."""
    pairs = (
        _waiting(now)
        .order_by("next_attempt_at", "pk")
        .values_list("channel_id", "group_key")[: BATCH * 10]
    )
    return list(dict.fromkeys(pairs))[:BATCH]


def claim(channel_id: int, key: str, now: datetime) -> list[AlertNotification]:
    """Claim the due rows of one group to one channel (at most ``GROUP_LIMIT``): one
    conditional UPDATE counts the attempt and holds them for the lease, under a token
    that finds exactly the rows this sender holds."""
    lease = now + timedelta(seconds=float(settings.MQB_ALERTS_SEND_LEASE))
    token = uuid.uuid4().hex
    pks = list(
        _waiting(now)
        .filter(channel_id=channel_id, group_key=key)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:GROUP_LIMIT]
    )
    held = AlertNotification.objects.filter(
        _unclaimed(now), pk__in=pks, sent_at__isnull=True, gave_up_at__isnull=True
    ).update(claimed_until=lease, claim_token=token, attempts=F("attempts") + 1)
    if not held:
        return []
    return list(
        AlertNotification.objects.select_related("channel")
        .filter(claim_token=token, claimed_until=lease)
        .order_by("created_at", "pk")
    )


def send_group(rows: list[AlertNotification], client: httpx.Client) -> bool:
    """Send claimed rows (one group, one channel) as one message and record the outcome."""
    channel = rows[0].channel
    message = group_message([row.payload for row in rows])
    try:
        if channel.kind == AlertChannel.Kind.EMAIL:
            send_email(channel, message, _timeout())
        else:
            request = build_request(channel, message, time.time())
            response = client.post(request.url, content=request.body, headers=request.headers)
            if not 200 <= response.status_code < 300:
                raise ChannelError(f"the receiver answered {response.status_code}")
    except ChannelError as exc:
        _failed(rows, exc.message, exc.permanent)
        return False
    except httpx.HTTPError as exc:
        # The exception's text may hold the URL (and a token in it): name only its type.
        _failed(rows, f"not delivered: {type(exc).__name__}", False)
        return False
    except httpx.InvalidURL:
        _failed(rows, "the URL cannot be parsed", True)
        return False
    _sent(rows, timezone.now())
    return True


def _timeout() -> float:
    return float(settings.MQB_ALERTS_SEND_TIMEOUT)


def _sent(rows: list[AlertNotification], now: datetime) -> None:
    with transaction.atomic():
        AlertNotification.objects.filter(pk__in=[row.pk for row in rows]).update(
            sent_at=now, claimed_until=None, last_error=""
        )
        AlertChannel.objects.filter(pk=rows[0].channel_id).update(
            last_success_at=now, consecutive_failures=0
        )


def _failed(rows: list[AlertNotification], message: str, permanent: bool) -> None:
    now = timezone.now()
    message = message[:1000]
    limit = int(settings.MQB_ALERTS_MAX_ATTEMPTS)
    with transaction.atomic():
        for attempts in sorted({row.attempts for row in rows}):
            gave_up = permanent or attempts >= limit
            AlertNotification.objects.filter(
                pk__in=[row.pk for row in rows if row.attempts == attempts]
            ).update(
                last_error=message,
                claimed_until=None,
                next_attempt_at=now + timedelta(seconds=backoff(attempts)),
                gave_up_at=now if gave_up else None,
            )
        AlertChannel.objects.filter(pk=rows[0].channel_id).update(
            last_failure_at=now,
            last_error=message,
            consecutive_failures=F("consecutive_failures") + 1,
        )
    log.info(
        "message of %d notification(s) to channel %s: %s", len(rows), rows[0].channel_id, message
    )


def send_due(client: httpx.Client | None = None) -> int:
    """Send every due group once; the number of notifications sent."""
    own = client is None
    http = client or httpx.Client(timeout=float(settings.MQB_ALERTS_SEND_TIMEOUT))
    sent = 0
    try:
        for channel_id, key in due(timezone.now()):
            rows = claim(channel_id, key, timezone.now())
            if rows and send_group(rows, http):
                sent += len(rows)
    finally:
        if own:
            http.close()
    return sent


class SenderThread(threading.Thread):
    """The collector's sender: :func:`send_due` every poll, or when woken."""

    def __init__(self) -> None:
        super().__init__(name="alerts-sender", daemon=True)
        self.wakeup = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=float(settings.MQB_ALERTS_SEND_TIMEOUT)) as client:
            while True:
                try:
                    send_due(client)
                except DatabaseError as exc:
                    log.warning("alerts: outbox not read: %s", exc)
                finally:
                    close_old_connections()
                self.wakeup.wait(float(settings.MQB_ALERTS_SEND_POLL))
                self.wakeup.clear()


_sender: SenderThread | None = None
_lock = threading.Lock()


def wake() -> None:
    """Start this process's sender if needed, and make it look at the outbox now."""
    global _sender
    with _lock:
        if _sender is None or not _sender.is_alive():
            _sender = SenderThread()
            _sender.start()
    _sender.wakeup.set()
