"""The site menu (``{% site_nav %}``): its sections, the current one, and what each role sees."""

from __future__ import annotations

import re

import pytest
from django.template.loader import get_template

pytestmark = pytest.mark.django_db

CURRENT = re.compile(r'<a href="([^"]*)" aria-current="page">([^<]*)</a>')


def menu(rf, user, path: str, role: str) -> str:
    request = rf.get(path)
    request.user = user
    html = get_template("base.html").render({"user_role": role}, request)
    return html[html.index('<nav id="site-nav"') : html.index("</nav>")]


@pytest.mark.parametrize(
    ("path", "section"),
    [
        ("/", "Overview"),
        ("/rabbitmq/local/queues/", "RabbitMQ"),
        ("/kafka/", "Kafka"),
        ("/clusters/local/kafka/topics/", "Kafka"),
        ("/deadletters/", "Dead letters"),
        ("/deadletters/queues/", "DLQs"),
        ("/consumers/", "Consumers"),
        ("/alerts/rules/", "Alerts"),
        ("/jobs/7/", "Jobs"),
        ("/audit/", "Audit log"),
        ("/clusters/local/rabbitmq/", None),
    ],
)
def test_the_menu_marks_the_section_of_the_page(rf, admin_user_, path, section):
    nav = menu(rf, admin_user_, path, "admin")
    assert [label for _url, label in CURRENT.findall(nav)] == ([section] if section else [])


def test_a_viewer_sees_neither_the_audit_log_nor_the_admin(rf, viewer):
    nav = menu(rf, viewer, "/audit/", "viewer")
    assert "Audit log" not in nav and "/admin/" not in nav
    assert '<span class="who-name">' + viewer.get_username() + "</span>" in nav
    assert '<span class="who-role">viewer</span>' in nav
    assert 'name="csrfmiddlewaretoken"' in nav


def test_names_in_the_menu_are_escaped(rf, make_user):
    user = make_user("<b>x</b>", "viewer")
    nav = menu(rf, user, "/", "viewer")
    assert "&lt;b&gt;x&lt;/b&gt;" in nav and "<b>x</b>" not in nav
