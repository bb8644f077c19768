"""URLs of job pages and of the RabbitMQ move form that starts them (API: dashboard.jobs.api).

Queue names go in the query string or the JSON body, never in the path (they
may hold ``/``, ``%`` or anything else).
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from dashboard.jobs import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/<int:job_id>/", views.job_detail, name="job"),
    path("jobs/<int:job_id>/<str:action>", views.job_control, name="job-control"),
    path("rabbitmq/<slug:slug>/move", views.move_form, name="rabbitmq-move"),
]
