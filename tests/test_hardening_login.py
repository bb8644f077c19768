"""Login throttling: a username is locked out from one address after repeated wrong passwords."""

from __future__ import annotations

import io
import subprocess

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from tests.conftest import PYTHON, ROOT, python_env

pytestmark = pytest.mark.django_db

RIGHT = "pw-for-tests"


def log_in(client: Client, username: str, password: str, address: str = "127.0.0.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def hammer(client: Client, username: str, times: int = 30) -> list[int]:
    return [log_in(client, username, f"wrong-{i}").status_code for i in range(times)]


def test_it_refuses_the_right_password_after_thirty_wrong_ones(client, viewer, settings):
    codes = hammer(client, "vera")
    response = log_in(client, "vera", RIGHT)

    limit = settings.AXES_FAILURE_LIMIT
    assert codes[: limit - 1] == [200] * (limit - 1)  # the login form, "wrong password"
    assert set(codes[limit:]) == {429}
    assert response.status_code == 429
    assert not logged_in(client)
    page = response.content.decode()
    assert "Locked out" in page and "vera" in page and "15 minutes" in page
    assert 'href="/login/"' in page  # the site's own page, not axes' plain text


def test_it_locks_only_that_user_from_that_address(client, viewer, operator):
    hammer(client, "vera")

    other_user = log_in(Client(), "otto", RIGHT)
    other_address = Client()
    from_elsewhere = log_in(other_address, "vera", RIGHT, address="10.9.8.7")

    assert other_user.status_code == 302
    assert from_elsewhere.status_code == 302 and logged_in(other_address)


def test_an_admin_unlocks_with_the_reset_command(client, viewer):
    hammer(client, "vera")
    assert log_in(client, "vera", RIGHT).status_code == 429

    call_command("axes_reset_username", "vera", stdout=io.StringIO())
    response = log_in(client, "vera", RIGHT)

    assert response.status_code == 302 and logged_in(client)


def test_an_admin_role_user_unlocks_in_the_django_admin(client, viewer, django_user_model):
    hammer(client, "vera")
    attempt = AccessAttempt.objects.get(username="vera")
    # Not a superuser: what the admin role's group grants is what it can do.
    unlocker = django_user_model.objects.create_user("adele", password=RIGHT, is_staff=True)
    unlocker.groups.add(Group.objects.get(name="admin"))
    admin = Client()
    admin.force_login(unlocker)

    page = admin.get("/admin/axes/accessattempt/")
    deleted = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})

    assert page.status_code == 200 and b"vera" in page.content
    assert deleted.status_code == 302
    assert log_in(client, "vera", RIGHT).status_code == 302 and logged_in(client)


def test_a_right_password_before_the_limit_starts_the_count_again(client, viewer, settings):
    for _ in range(2):
        hammer(client, "vera", times=settings.AXES_FAILURE_LIMIT - 1)
        assert log_in(client, "vera", RIGHT).status_code == 302
        client.logout()


def test_the_limit_and_the_wait_come_from_the_environment():
    env = python_env(MQB_LOGIN_FAILURE_LIMIT="3", MQB_LOGIN_COOLOFF_MINUTES="2.5")
    out = subprocess.run(
        [PYTHON, "-c", "import django; django.setup(); from django.conf import settings as s;"
         " print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds())"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip

    assert out == ["3", "150.0"]
