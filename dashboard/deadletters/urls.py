"""URLs of the deadletters pages (included by dashboard/urls.py); their API: deadletters.api.

The dead-letter queues page and the inbox. Vhost and queue names travel
in form fields and JSON bodies, never in paths (they may hold ``/`` or ``%``).
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from dashboard.deadletters.views import inbox, policies, queues, schedules
from dashboard.deadletters.views import preview as dry_run
from dashboard.deadletters.views import redirects as redirect_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("deadletters/queues/", queues.dead_letter_queues, name="deadletters-queues"),
    path("deadletters/queues/manage", queues.manage, name="deadletters-manage"),
    path("deadletters/queues/release", queues.release, name="deadletters-release"),
    # The inbox, one letter, requeue and discard.
    path("deadletters/", inbox.inbox, name="deadletters-inbox"),
    path("deadletters/<int:letter_id>/", inbox.detail, name="deadletters-detail"),
    path("deadletters/<int:letter_id>/requeue", inbox.requeue, name="deadletters-requeue"),
    path("deadletters/<int:letter_id>/body", inbox.body, name="deadletters-body"),
    path("deadletters/<int:letter_id>/retry-task", inbox.retry_task, name="deadletters-retry-task"),
    path(
        "deadletters/<int:letter_id>/release",
        inbox.release_stuck,
        name="deadletters-release-stuck",
    ),
    path("deadletters/discard", inbox.discard, name="deadletters-discard"),
    path("deadletters/discard-all", inbox.discard_all, name="deadletters-discard-all"),
    path("deadletters/purge", inbox.purge, name="deadletters-purge"),
    path("deadletters/requeue-bulk", inbox.requeue_bulk, name="deadletters-requeue-bulk"),
    # Redirects: old origins mapped to new targets.
    path("deadletters/redirects/", redirect_views.redirects_page, name="deadletters-redirects"),
    path("deadletters/redirects/new", redirect_views.new_redirect, name="deadletters-redirect-new"),
    path(
        "deadletters/redirects/<int:redirect_id>/toggle",
        redirect_views.toggle,
        name="deadletters-redirect-toggle",
    ),
    path(
        "deadletters/redirects/<int:redirect_id>/delete",
        redirect_views.delete,
        name="deadletters-redirect-delete",
    ),
    # Scheduled requeues: the schedules, and requeue later from a letter's page.
    path("deadletters/schedules/", schedules.schedules, name="deadletters-schedules"),
    path(
        "deadletters/schedules/<int:schedule_id>/", schedules.schedule, name="deadletters-schedule"
    ),
    path(
        "deadletters/schedules/<int:schedule_id>/cancel",
        schedules.schedule_cancel,
        name="deadletters-schedule-cancel",
    ),
    path(
        "deadletters/schedules/<int:schedule_id>/send-now",
        schedules.schedule_send_now,
        name="deadletters-schedule-send-now",
    ),
    path(
        "deadletters/<int:letter_id>/later",
        schedules.letter_later,
        name="deadletters-requeue-later",
    ),
    path(
        "deadletters/<int:letter_id>/schedule/cancel",
        schedules.letter_cancel,
        name="deadletters-letter-schedule-cancel",
    ),
    path(
        "deadletters/<int:letter_id>/schedule/send-now",
        schedules.letter_send_now,
        name="deadletters-letter-schedule-send-now",
    ),
    # The dry run of a bulk requeue, and its confirmation.
    path("deadletters/preview/<str:token>/", dry_run.preview_page, name="deadletters-preview"),
    path(
        "deadletters/preview/<str:token>/requeue",
        dry_run.confirm_now,
        name="deadletters-preview-requeue",
    ),
    path(
        "deadletters/preview/<str:token>/schedule",
        dry_run.confirm_schedule,
        name="deadletters-preview-schedule",
    ),
    # Retry policies.
    path("deadletters/policies/", policies.policies, name="deadletters-policies"),
    path("deadletters/policies/new", policies.edit, name="deadletters-policy-new"),
    path("deadletters/policies/<int:policy_id>/", policies.edit, name="deadletters-policy-edit"),
    path(
        "deadletters/policies/<int:policy_id>/mode",
        policies.mode,
        name="deadletters-policy-mode",
    ),
    path(
        "deadletters/policies/<int:policy_id>/move",
        policies.move,
        name="deadletters-policy-move",
    ),
    path(
        "deadletters/policies/<int:policy_id>/delete",
        policies.delete,
        name="deadletters-policy-delete",
    ),
]
