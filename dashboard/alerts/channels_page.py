"""Channels and their delivery health: a page (``alerts/channels/``) and an API route.

Read-only, for every role: per channel its name, kind, whether it is enabled, its
state (``ok``: the last message went; ``failing``: the last one or more failed, with
how many in a row; ``never_used``: nothing sent or tried yet), when a message last
went and last failed, the last error (the sender's sanitised text: never the URL, a
token or a password) and how many notifications wait for it (unsent, not given up).
Channels are configured in the admin (their URLs and secrets live in the environment
or files and are never shown here).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from ninja import Field, Router

from dashboard.core import display
from dashboard.core.api import DateTimeText, Out
from dashboard.models import AlertChannel

OK, FAILING, NEVER_USED = "ok", "failing", "never_used"
State = Literal["ok", "failing", "never_used"]

display.register("channel_ok", "OK", display.OK)
display.register("channel_failing", "Failing", display.DANGER)
display.register("channel_never_used", "Never used", display.MUTED)


@dataclass(frozen=True)
class ChannelHealth:
    pk: int
    name: str
    kind: str
    kind_label: str
    enabled: bool
    state: str
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str
    consecutive_failures: int
    pending: int


def channel_state(channel: AlertChannel) -> str:
    if channel.consecutive_failures > 0:
        return FAILING
    if channel.last_success_at is None and channel.last_failure_at is None:
        return NEVER_USED
    return OK


def get_channels() -> list[ChannelHealth]:
    """Every channel with its state and waiting notifications (one query)."""
    waiting = Q(notifications__sent_at__isnull=True, notifications__gave_up_at__isnull=True)
    rows = AlertChannel.objects.annotate(pending=Count("notifications", filter=waiting))
    return [
        ChannelHealth(
            pk=c.pk,
            name=c.name,
            kind=c.kind,
            kind_label=c.get_kind_display(),
            enabled=c.enabled,
            state=channel_state(c),
            last_success_at=c.last_success_at,
            last_failure_at=c.last_failure_at,
            last_error=c.last_error,
            consecutive_failures=c.consecutive_failures,
            pending=c.pending,
        )
        for c in rows.order_by("name")
    ]


@require_GET
async def channels(request: HttpRequest) -> HttpResponse:
    context = {"rows": await sync_to_async(get_channels)()}
    response: HttpResponse = await sync_to_async(render)(request, "alerts/channels.html", context)
    return response


# -- JSON API -------------------------------------------------------------------------

router = Router(tags=["alerts"])


class AlertChannelHealthOut(Out):
    id: int
    name: str
    kind: str = Field(examples=["webhook", "slack", "teams", "email"])
    enabled: bool
    state: State = Field(
        description="ok: the last message went; failing: the last one(s) failed; "
        "never_used: nothing sent or tried yet"
    )
    last_success_at: DateTimeText | None
    last_failure_at: DateTimeText | None
    last_error: str = Field(description="the last failure, sanitised (no URL, token or password)")
    consecutive_failures: int = Field(description="failed messages in a row; 0 once one went")
    pending: int = Field(description="notifications waiting for this channel")


class AlertChannelsOut(Out):
    channels: list[AlertChannelHealthOut]


def _iso(moment: datetime | None) -> str | None:
    return display.iso(moment) if moment else None


@router.get(
    "/alerts/channels",
    response={200: AlertChannelsOut},
    url_name="api-alert-channels",
    summary="Notification channels and their delivery health",
    operation_id="listAlertChannels",
)
def alert_channels(request: HttpRequest) -> Any:
    return {
        "channels": [
            {
                "id": c.pk,
                "name": c.name,
                "kind": c.kind,
                "enabled": c.enabled,
                "state": c.state,
                "last_success_at": _iso(c.last_success_at),
                "last_failure_at": _iso(c.last_failure_at),
                "last_error": c.last_error,
                "consecutive_failures": c.consecutive_failures,
                "pending": c.pending,
            }
            for c in get_channels()
        ]
    }
