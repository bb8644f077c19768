"""URLs of jobs (pages and JSON API) and of the RabbitMQ move form that starts them.

Queue names go in the query string or the JSON body, never in the path (they
may hold ``/``, ``%`` or anything else).
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from dashboard.api import jobs as api
from dashboard.jobs import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/<int:job_id>/", views.job_detail, name="job"),
    path("jobs/<int:job_id>/<str:action>", views.job_control, name="job-control"),
    path("rabbitmq/<slug:slug>/move", views.move_form, name="rabbitmq-move"),
    path("api/jobs", api.job_list, name="api-jobs"),
    path("api/jobs/<int:job_id>", api.job_detail, name="api-job"),
    path("api/jobs/<int:job_id>/pause", api.pause, name="api-job-pause"),
    path("api/jobs/<int:job_id>/resume", api.resume, name="api-job-resume"),
    path("api/jobs/<int:job_id>/cancel", api.cancel, name="api-job-cancel"),
    path("api/clusters/<slug:slug>/rabbitmq/move", api.start_move, name="api-rabbitmq-move"),
]
