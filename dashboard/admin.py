from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from dashboard.core.roles import ADMIN, has_role
from dashboard.models import AuditEntry, Cluster, Consumer, DeadLetter, Job, ThroughputSample


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
    list_display = ("slug", "kind", "name", "status", "version", "last_checked_at", "protected")
    list_filter = ("kind", "status", "protected", "read_only")
    readonly_fields = (
        "slug", "kind", "status", "status_code", "status_detail", "version", "overview",
        "last_checked_at", "last_ok_at", "down_since",
    )  # fmt: skip


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    """Read-only but for the two actions: every change to a letter goes through the
    inbox's services (roles, the double-send guard, the audit), never a hand edit."""

    list_display = ("id", "cluster", "dlq", "reason", "exception_class", "status", "captured_at")
    list_filter = ("cluster", "status", "reason", "dlq", "captured_at")
    search_fields = (
        "message_id", "dlq", "exception_class", "exception_message", "origin_queue",
        "origin_exchange", "origin_routing_key", "origin_topic", "fingerprint",
    )  # fmt: skip
    exclude = ("body", "key")
    actions = ("requeue_selected", "discard_selected", "purge_selected")

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
    list_display = ("id", "kind", "state", "done", "failed", "total", "created_by", "created_at")
    list_filter = ("kind", "state")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("time", "username", "action", "cluster", "target", "outcome", "client_ip")
    list_filter = ("action", "outcome", "cluster")
    search_fields = ("username", "target", "detail")


@admin.register(Consumer)
class ConsumerAdmin(ReadOnlyAdmin):
    list_display = ("cluster", "kind", "identity", "source", "last_seen")
    list_filter = ("cluster", "kind")


@admin.register(ThroughputSample)
class ThroughputSampleAdmin(ReadOnlyAdmin):
    list_display = ("cluster", "entity_type", "entity", "resolution", "time", "depth")
    list_filter = ("cluster", "entity_type", "resolution")
