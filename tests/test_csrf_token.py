"""The CSRF token masked once per request (``dashboard.core.csrf``).

Django's own middleware checks every token here: a page's forms must post with the
token the page carries, from a first visit (no cookie yet) and from a logged-in page.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from django.middleware.csrf import CSRF_ALLOWED_CHARS
from django.test import Client

from dashboard.core import csrf

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _unmask_cipher_token(token: str) -> str:
    """The secret of a masked token (Django's scheme: mask, then secret + mask per char)."""
    chars = CSRF_ALLOWED_CHARS
    key, cipher = token[:32], token[32:]
    return "".join(chars[chars.index(c) - chars.index(k)] for c, k in zip(cipher, key, strict=True))


def test_a_masked_token_unmasks_to_its_secret_and_differs_each_time():
    secret = csrf.random_string()
    tokens = {csrf.mask(secret) for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert len(token) == 64 and set(token) <= set(CSRF_ALLOWED_CHARS)
        assert _unmask_cipher_token(token) == secret


def test_random_strings_use_every_character_of_the_alphabet_evenly():
    drawn = Counter("".join(csrf.random_string() for _ in range(4000)))
    assert set(drawn) == set(CSRF_ALLOWED_CHARS)
    expected = 4000 * 32 / len(CSRF_ALLOWED_CHARS)
    # Far looser than chance allows (about 2,065 each, standard deviation about 45).
    assert all(abs(n - expected) < expected * 0.2 for n in drawn.values()), drawn


@pytest.mark.django_db
def test_a_first_visit_gets_a_cookie_and_a_token_that_logs_in(viewer):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/")
    assert "csrftoken" in page.cookies
    found = TOKEN.search(page.content.decode())
    assert found is not None
    token = found.group(1)
    secret = page.cookies["csrftoken"].value
    assert _unmask_cipher_token(token) == secret
    response = client.post(
        "/login/",
        {"username": viewer.username, "password": "pw-for-tests", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    refused = Client(enforce_csrf_checks=True).post(
        "/login/", {"username": viewer.username, "password": "pw-for-tests"}
    )
    assert refused.status_code == 403


@pytest.mark.django_db
def test_one_token_per_page_a_new_one_per_page_and_each_one_works(operator, use_clusters):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    seen = []
    for _ in range(2):  # the first page makes the CSRF cookie, the second reads it
        page = client.get("/").content.decode()
        tokens = set(TOKEN.findall(page))
        assert len(tokens) == 1, tokens  # the logout form and every card's check form
        assert page.count("csrfmiddlewaretoken") >= 2
        seen.append(tokens.pop())
    assert seen[0] != seen[1]
    secret = client.cookies["csrftoken"].value
    assert {_unmask_cipher_token(t) for t in seen} == {secret}
    for token in seen:
        response = client.post("/logout/", {"csrfmiddlewaretoken": token})
        assert response.status_code in (200, 302)
        client.force_login(operator)
