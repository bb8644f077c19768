"""The Django admin for the admin role: the dashboard's tables, read-only, in the pages' words.

Letters change only through the audited dead-letter actions (requeue, discard, purge), never
by hand. Lists show labels instead of codes and times in the one format the pages use
("2026-12-06 05:11:45 UTC"); the letters list leaves the bodies in the database, and the
large tables skip the second, unfiltered count.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from dashboard.core import display
from dashboard.core.roles import ADMIN, has_role
from dashboard.jobs.control import RUNNERS
from dashboard.models import AuditEntry, Cluster, Consumer, DeadLetter, Job, ThroughputSample

admin.site.site_header = "mqboard administration"
admin.site.site_title = "mqboard admin"
admin.site.index_title = "Tables"


def when_column(field: str, description: str) -> Callable[[Any, Any], str]:
    """A list column showing ``field`` as "YYYY-MM-DD HH:MM:SS UTC", sortable by it."""

    @admin.display(description=description, ordering=field)
    def column(self: Any, obj: Any) -> str:
        moment: datetime | None = getattr(obj, field)
        return display.utc_text(moment) if moment is not None else display.NONE

    return column


def label_column(field: str, description: str) -> Callable[[Any, Any], str]:
    """A list column showing the code in ``field`` by its human label, sortable by it."""

    @admin.display(description=description, ordering=field)
    def column(self: Any, obj: Any) -> str:
        code = getattr(obj, field)
        return display.label(code) if code else display.NONE

    return column


class ActionFilter(admin.SimpleListFilter):
    """The audit trail's actions recorded so far, by their labels."""

    title = "action"
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        codes = AuditEntry.objects.order_by("action").values_list("action", flat=True)
        return sorted(((c, display.label(c)) for c in codes.distinct()), key=lambda p: p[1])

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(action=self.value()) if self.value() else queryset


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Records of what happened are not edited by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("slug", "kind", "name", "status", "version", "last_checked", "protected")
    last_checked = when_column("last_checked_at", "Last checked")
    list_filter = ("kind", "status", "protected", "read_only")
    readonly_fields = (
        "slug", "kind", "status", "status_code", "status_detail", "version", "overview",
        "last_checked_at", "last_ok_at", "down_since",
    )  # fmt: skip


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    """Read-only but for the two actions: every change to a letter goes through the
    inbox's services (roles, the double-send guard, the audit), never a hand edit."""

    list_display = ("id", "cluster", "dlq", "reason_label", "exception_class", "status", "captured")
    reason_label = label_column("reason", "Reason")
    captured = when_column("captured_at", "Captured")
    show_full_result_count = False
    list_filter = ("cluster", "status", "reason", "dlq", "captured_at")
    search_fields = (
        "message_id", "dlq", "exception_class", "exception_message", "origin_queue",
        "origin_exchange", "origin_routing_key", "origin_topic", "fingerprint",
    )  # fmt: skip
    exclude = ("body", "key")
    # The list shows none of these; a page of 100 letters would otherwise read 100 bodies.
    LIST_DEFERRED = ("body", "key", "headers", "properties", "failure_details")
    actions = ("requeue_selected", "discard_selected", "purge_selected")

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeadLetter]:
        rows = super().get_queryset(request)
        match = request.resolver_match
        if match is not None and match.url_name == "dashboard_deadletter_changelist":
            rows = rows.defer(*self.LIST_DEFERRED)
        return rows

    @admin.action(description="Requeue selected to their origin")
    def requeue_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        # The same service as the inbox: roles, the double-send guard, the audit.
        from dashboard.deadletters.requeue import do_requeue_many

        ids = list(queryset.values_list("pk", flat=True))
        try:
            done = async_to_sync(do_requeue_many)(ids, user=request.user, request=request)
        except PermissionDenied as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        level = messages.SUCCESS if not done.failed else messages.WARNING
        text = f"Requeued {done.sent}, failed {done.failed}, skipped {done.skipped} (not pending)."
        self.message_user(request, " ".join([text, *done.errors]), level)

    @admin.action(description="Discard selected")
    def discard_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        from dashboard.deadletters.discard import do_discard_dead_letters

        ids = list(queryset.values_list("pk", flat=True))
        try:
            done = async_to_sync(do_discard_dead_letters)(ids, user=request.user, request=request)
        except PermissionDenied as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Discarded {done} (the others were not pending).")

    def has_purge_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, ADMIN)

    @admin.action(description="Purge selected (delete now, admin)", permissions=["purge"])
    def purge_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        # The inbox's purge: admin role, letters being requeued kept, one audit entry.
        from dashboard.deadletters.discard import do_purge_dead_letters

        ids = list(queryset.values_list("pk", flat=True))
        try:
            done = async_to_sync(do_purge_dead_letters)(user=request.user, ids=ids, request=request)
        except PermissionDenied as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Purged {done} (letters being requeued are kept).")


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("id", "what", "state", "done", "failed", "total", "created_by", "created")
    list_filter = ("kind", "state")
    search_fields = ("created_by__username", "kind")
    created = when_column("created_at", "Created")

    @admin.display(description="What", ordering="kind")
    def what(self, job: Job) -> str:
        kind = RUNNERS.get(job.kind)
        return kind.title[:1].upper() + kind.title[1:] if kind else display.label(job.kind)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("when", "username", "action_label", "cluster", "target", "outcome", "client_ip")
    list_filter = (ActionFilter, "outcome", "cluster")
    search_fields = ("username", "target", "detail")
    show_full_result_count = False
    when = when_column("time", "Time")
    action_label = label_column("action", "Action")


@admin.register(Consumer)
class ConsumerAdmin(ReadOnlyAdmin):
    list_display = ("cluster", "kind", "identity", "source", "seen")
    seen = when_column("last_seen", "Last seen")
    list_filter = ("cluster", "kind")


@admin.register(ThroughputSample)
class ThroughputSampleAdmin(ReadOnlyAdmin):
    list_display = ("cluster", "entity_type", "entity", "resolution", "when", "depth")
    list_filter = ("cluster", "entity_type", "resolution")
    show_full_result_count = False
    when = when_column("time", "Time")
