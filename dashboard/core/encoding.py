"""Message bytes in JSON, sent once: as text when they are UTF-8, as base64 only when not."""

from __future__ import annotations

import base64
from typing import Literal

Encoding = Literal["utf-8", "base64"]


def encode_once(raw: bytes, cut: bool = False) -> tuple[Encoding, str]:
    """``(encoding, data)``: the bytes as text when they are UTF-8, else as base64.

    ``cut``: ``raw`` is the head of a longer value, so a character split at its
    end does not make it binary (the split character is left out).
    """
    try:
        return "utf-8", raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if cut and exc.start >= len(raw) - 3 and exc.reason == "unexpected end of data":
            return "utf-8", raw[: exc.start].decode("utf-8")
        return "base64", base64.b64encode(raw).decode("ascii")
