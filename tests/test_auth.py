"""Login, roles and the Django admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from dashboard.core.roles import ADMIN, OPERATOR, VIEWER, has_role, role_of

pytestmark = pytest.mark.django_db


def test_the_roles_exist_after_migrating():
    assert set(Group.objects.values_list("name", flat=True)) >= {"viewer", "operator", "admin"}


def test_roles_are_ordered(viewer, operator, admin_user_):
    assert role_of(viewer) == VIEWER and role_of(operator) == OPERATOR
    assert role_of(admin_user_) == ADMIN
    assert has_role(operator, VIEWER) and not has_role(viewer, OPERATOR)
    assert has_role(admin_user_, OPERATOR)


def test_a_user_in_no_group_is_a_viewer(django_user_model):
    user = django_user_model.objects.create_user("nobody", password="x")
    assert role_of(user) == VIEWER


def test_it_logs_in_with_a_password(client, viewer):
    response = client.post("/login/", {"username": "vera", "password": "pw-for-tests"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_a_wrong_password_is_refused(client, viewer):
    response = client.post("/login/", {"username": "vera", "password": "nope"})
    assert response.status_code == 200
    assert "Wrong username or password" in response.content.decode()


def test_the_login_form_needs_csrf(viewer):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/login/", {"username": "vera", "password": "pw-for-tests"})
    assert response.status_code == 403


def test_the_admin_works_for_admins(client, admin_user_):
    client.force_login(admin_user_)
    for path in (
        "/admin/",
        "/admin/dashboard/deadletter/",
        "/admin/dashboard/auditentry/",
        "/admin/dashboard/job/",
        "/admin/dashboard/cluster/",
    ):
        assert client.get(path).status_code == 200, path


def test_the_admin_refuses_viewers(client, viewer):
    client.force_login(viewer)
    assert client.get("/admin/").status_code == 302


def test_ensure_user_creates_a_login_with_a_role(monkeypatch):
    from django.contrib.auth import authenticate
    from django.core.management import call_command
    from django.test import RequestFactory

    monkeypatch.setenv("MQB_USER_PASSWORD", "demo-pass-123")
    call_command("ensure_user", "demo", role="operator")
    # Login throttling needs the request (the client's address) of every login.
    request = RequestFactory().post("/login/")
    user = authenticate(request, username="demo", password="demo-pass-123")
    assert user is not None and role_of(user) == OPERATOR
