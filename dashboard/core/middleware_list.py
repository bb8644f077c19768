"""``MIDDLEWARE`` that answers ``in`` for the Django classes it runs under other names.

``dashboard.core.middleware`` runs Django's own middleware as subclasses (their
hooks inline under ASGI). Django's deploy checks (``manage.py check --deploy``)
look for Django's dotted names with ``name in settings.MIDDLEWARE``: without the
names they would warn that security, CSRF and clickjacking middleware are missing
(W001 to W003) and skip every check that depends on them (HSTS, SSL redirect,
secure cookies, X-Frame-Options). This list says a Django name is present when the
subclass standing for it is, so every one of those checks runs as written.

No Django import here: ``dashboard.settings`` builds the list.
"""

from __future__ import annotations

# Our subclass -> the Django class it is (a subclass of; same behaviour, hooks inline).
TWINS: dict[str, str] = {
    "dashboard.core.middleware.SecurityMiddleware": "django.middleware.security.SecurityMiddleware",
    "dashboard.core.middleware.CommonMiddleware": "django.middleware.common.CommonMiddleware",
    "dashboard.core.middleware.CsrfViewMiddleware": "django.middleware.csrf.CsrfViewMiddleware",
    "dashboard.core.middleware.SessionMiddleware": (
        "django.contrib.sessions.middleware.SessionMiddleware"
    ),
    "dashboard.core.middleware.MessageMiddleware": (
        "django.contrib.messages.middleware.MessageMiddleware"
    ),
    "dashboard.core.middleware.XFrameOptionsMiddleware": (
        "django.middleware.clickjacking.XFrameOptionsMiddleware"
    ),
    "dashboard.core.login.CachedUserMiddleware": (
        "django.contrib.auth.middleware.AuthenticationMiddleware"
    ),
}


class MiddlewareList(list[str]):
    """A list of dotted paths; ``django_name in it`` is true when its twin is in it."""

    def __contains__(self, name: object) -> bool:
        if super().__contains__(name):
            return True
        return any(TWINS.get(ours) == name for ours in self)
