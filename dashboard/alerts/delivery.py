"""The sender: empties the notification outbox, at least once, with backoff.

:func:`send_due` claims due rows one by one with a conditional UPDATE (unsent, not
given up, due, and unclaimed or with an expired claim) that also counts the
attempt and holds the row for ``MQB_ALERTS_SEND_LEASE`` seconds; then it sends the
row's request (``channels.build_request``, ``MQB_ALERTS_SEND_TIMEOUT``), or its mail
(``channels.send_email``). A 2xx answer (a mail the SMTP server accepted) marks it
sent. Anything else (a refused connection, a timeout, a non-2xx
answer) records ``last_error`` and makes it due again after
``MQB_ALERTS_RETRY_BASE`` seconds doubling per attempt up to
``MQB_ALERTS_RETRY_CAP``; after ``MQB_ALERTS_MAX_ATTEMPTS`` attempts, or on a
permanent error (a URL that does not fit the channel's kind), it is given up.

At least once: a row is unsent until a receiver answered 2xx and that was
committed. A sender killed (``kill -9``) mid-send leaves its claim to expire, and
the next sender sends the row again with the same notification id.

:class:`SenderThread` runs :func:`send_due` in the collector (started by the
hook on the first sample), every ``MQB_ALERTS_SEND_POLL`` seconds or as soon as
an evaluation wrote notifications (:func:`wake`). Several senders (two
collectors) are safe: a row is claimed by one at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.db.models import F, Q
from django.utils import timezone

from dashboard.alerts.channels import ChannelError, build_request, send_email
from dashboard.models import AlertChannel, AlertNotification

log = logging.getLogger("dashboard.alerts.delivery")
BATCH = 100


def backoff(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``."""
    base = float(settings.MQB_ALERTS_RETRY_BASE)
    return float(min(float(settings.MQB_ALERTS_RETRY_CAP), base * 2 ** max(0, attempts - 1)))


def _unclaimed(now: datetime) -> Q:
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)


def due(now: datetime) -> list[int]:
    return list(
        AlertNotification.objects.filter(
            _unclaimed(now),
            sent_at__isnull=True,
            gave_up_at__isnull=True,
            next_attempt_at__lte=now,
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:BATCH]
    )


def claim(pk: int, now: datetime) -> bool:
    lease = now + timedelta(seconds=float(settings.MQB_ALERTS_SEND_LEASE))
    return (
        AlertNotification.objects.filter(
            _unclaimed(now), pk=pk, sent_at__isnull=True, gave_up_at__isnull=True
        ).update(claimed_until=lease, attempts=F("attempts") + 1)
        == 1
    )


def send_one(notification: AlertNotification, client: httpx.Client) -> None:
    """Send one claimed row and record the outcome."""
    now = timezone.now()
    try:
        if notification.channel.kind == AlertChannel.Kind.EMAIL:
            send_email(notification.channel, notification.payload, _timeout())
            _sent(notification, now)
            return
        request = build_request(notification.channel, notification.payload, time.time())
        response = client.post(request.url, content=request.body, headers=request.headers)
        if not 200 <= response.status_code < 300:
            raise ChannelError(f"the receiver answered {response.status_code}")
    except ChannelError as exc:
        _failed(notification, exc.message, exc.permanent)
        return
    except httpx.HTTPError as exc:
        # The exception's text may hold the URL (and a token in it): name only its type.
        _failed(notification, f"not delivered: {type(exc).__name__}", False)
        return
    _sent(notification, now)


def _timeout() -> float:
    return float(settings.MQB_ALERTS_SEND_TIMEOUT)


def _sent(notification: AlertNotification, now: datetime) -> None:
    AlertNotification.objects.filter(pk=notification.pk).update(
        sent_at=now, claimed_until=None, last_error=""
    )


def _failed(notification: AlertNotification, message: str, permanent: bool) -> None:
    now = timezone.now()
    gave_up = permanent or notification.attempts >= int(settings.MQB_ALERTS_MAX_ATTEMPTS)
    AlertNotification.objects.filter(pk=notification.pk).update(
        last_error=message[:1000],
        claimed_until=None,
        next_attempt_at=now + timedelta(seconds=backoff(notification.attempts)),
        gave_up_at=now if gave_up else None,
    )
    log.info("notification %s: %s", notification.notification_id, message)


def send_due(client: httpx.Client | None = None) -> int:
    """Send every due notification once; the number sent."""
    own = client is None
    http = client or httpx.Client(timeout=float(settings.MQB_ALERTS_SEND_TIMEOUT))
    sent = 0
    try:
        for pk in due(timezone.now()):
            if not claim(pk, timezone.now()):
                continue
            row = AlertNotification.objects.select_related("channel").get(pk=pk)
            send_one(row, http)
            sent += AlertNotification.objects.filter(pk=pk, sent_at__isnull=False).count()
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
