"""Path converters shared by the pages' URLs and the API's routes.

``<signed:...>`` takes any whole number, negative or huge, so that the view
answers 400 saying why (a partition past 32 bits, a negative offset) where
Django's ``<int:...>`` would answer 404. Registered on import.
"""

from __future__ import annotations

from django.urls import register_converter


class SignedInt:
    regex = r"-?[0-9]+"

    def to_python(self, value: str) -> int:
        if len(value.lstrip("-")) > 19:  # past any 64-bit number: not worth converting
            return -(2**64) if value.startswith("-") else 2**64
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(SignedInt, "signed")
