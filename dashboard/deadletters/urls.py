"""URLs of the deadletters pages and their JSON API (included by dashboard/urls.py).

The dead-letter queues page, the inbox and their API. Vhost and queue names travel
in form fields and JSON bodies, never in paths (they may hold ``/`` or ``%``).
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from dashboard.api import deadletters as api
from dashboard.api import deadletters_inbox as inbox_api
from dashboard.deadletters.views import inbox, queues

urlpatterns: list[URLPattern | URLResolver] = [
    path("deadletters/queues/", queues.dead_letter_queues, name="deadletters-queues"),
    path("deadletters/queues/manage", queues.manage, name="deadletters-manage"),
    path("deadletters/queues/release", queues.release, name="deadletters-release"),
    path("api/deadletters/queues", api.queues, name="api-deadletters-queues"),
    path("api/deadletters/queues/manage", api.manage, name="api-deadletters-manage"),
    path("api/deadletters/queues/release", api.release, name="api-deadletters-release"),
    # The inbox, one letter, requeue and discard.
    path("deadletters/", inbox.inbox, name="deadletters-inbox"),
    path("deadletters/<int:letter_id>/", inbox.detail, name="deadletters-detail"),
    path("deadletters/<int:letter_id>/requeue", inbox.requeue, name="deadletters-requeue"),
    path("deadletters/<int:letter_id>/body", inbox.body, name="deadletters-body"),
    path(
        "deadletters/<int:letter_id>/release",
        inbox.release_stuck,
        name="deadletters-release-stuck",
    ),
    path("deadletters/discard", inbox.discard, name="deadletters-discard"),
    path("deadletters/discard-all", inbox.discard_all, name="deadletters-discard-all"),
    path("deadletters/purge", inbox.purge, name="deadletters-purge"),
    path("deadletters/requeue-bulk", inbox.requeue_bulk, name="deadletters-requeue-bulk"),
    path(
        "api/deadletters/requeue-bulk", inbox_api.requeue_bulk, name="api-deadletters-requeue-bulk"
    ),
    path("api/deadletters/groups", inbox_api.groups, name="api-deadletters-groups"),
    path("api/deadletters/letters", inbox_api.letters, name="api-deadletters-letters"),
    path(
        "api/deadletters/letters/<int:letter_id>", inbox_api.letter, name="api-deadletters-letter"
    ),
    path(
        "api/deadletters/letters/<int:letter_id>/requeue",
        inbox_api.requeue,
        name="api-deadletters-requeue",
    ),
    path(
        "api/deadletters/letters/<int:letter_id>/release",
        inbox_api.release_stuck,
        name="api-deadletters-release-stuck",
    ),
    path("api/deadletters/discard", inbox_api.discard, name="api-deadletters-discard"),
    path("api/deadletters/discard-all", inbox_api.discard_all, name="api-deadletters-discard-all"),
    path("api/deadletters/purge", inbox_api.purge, name="api-deadletters-purge"),
]
