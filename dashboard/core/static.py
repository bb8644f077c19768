"""Django's static files storage, with each file's URL worked out once per process.

Every page asks for the URLs of its stylesheets and scripts (``{% static %}``), five
or six a page; the answer depends only on the name and ``STATIC_URL``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.staticfiles.storage import StaticFilesStorage as DjangoStaticFilesStorage


class StaticFilesStorage(DjangoStaticFilesStorage):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._urls: dict[str | None, str] = {}

    def url(self, name: str | None) -> str:
        found = self._urls.get(name)
        if found is None:
            found = self._urls[name] = super().url(name)
        return found

    def _clear_cached_properties(self, setting: str, **kwargs: Any) -> None:
        super()._clear_cached_properties(setting, **kwargs)  # type: ignore[arg-type]
        if setting in ("STATIC_URL", "STATIC_ROOT", "FORCE_SCRIPT_NAME"):
            self._urls.clear()
