"""OpenAPI paths and component schemas of the kafka JSON API (merged by api/openapi.py)."""

from __future__ import annotations

from typing import Any

PATHS: dict[str, Any] = {}
SCHEMAS: dict[str, Any] = {}
