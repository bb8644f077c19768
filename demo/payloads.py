"""Message bodies the demo sends: plausible user events and jobs, in JSON or MessagePack.

The dashboard decodes and previews bodies, so the demo mixes both encodings.
A share of messages is marked ``poison`` when it is built; every consumer
(RabbitMQ, Celery, Kafka) refuses those, which is what makes dead letters
accumulate on purpose rather than by accident.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgpack

JSON = "application/json"
MSGPACK = "application/x-msgpack"

_FIRST = ("ada", "grace", "alan", "edsger", "barbara", "ken", "margaret", "linus", "radia")
_PLANS = ("free", "team", "business", "enterprise")
_JOBS = ("send-welcome-email", "sync-crm-contact", "rebuild-search-index", "generate-invoice")
_POISON_REASONS = (
    "missing required field 'email'",
    "schema version 0 is no longer supported",
    "user id does not match tenant",
    "payload references a deleted account",
)


class InvalidPayload(ValueError):
    """A body that cannot be decoded, or one marked as poison."""


@dataclass(frozen=True)
class Encoded:
    body: bytes
    content_type: str


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def user_id(rng: random.Random) -> str:
    """A small pool of users, so the same user recurs and Kafka keying matters."""
    return f"u-{rng.randint(1, 400):04d}"


def _poison(rng: random.Random, fail_share: float) -> dict[str, Any]:
    if rng.random() < fail_share:
        return {"poison": True, "poison_reason": rng.choice(_POISON_REASONS)}
    return {}


def user_event(rng: random.Random, event: str, fail_share: float) -> dict[str, Any]:
    uid = user_id(rng)
    payload: dict[str, Any] = {
        "event": event,
        "event_id": uuid.uuid4().hex,
        "user_id": uid,
        "occurred_at": now_iso(),
        "schema_version": 2,
    }
    if event != "user.deleted":
        name = rng.choice(_FIRST)
        payload["user"] = {
            "name": name.title(),
            "email": f"{name}.{uid}@example.com",
            "plan": rng.choice(_PLANS),
            "tags": rng.sample(["beta", "vip", "trial", "eu", "us"], k=rng.randint(0, 2)),
        }
    payload.update(_poison(rng, fail_share))
    return payload


def job(rng: random.Random, fail_share: float) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "job": rng.choice(_JOBS),
        "job_id": uuid.uuid4().hex,
        "user_id": user_id(rng),
        "requested_at": now_iso(),
        "attempt": 1,
    }
    payload.update(_poison(rng, fail_share))
    return payload


def image_job(rng: random.Random, fail_share: float) -> tuple[list[Any], dict[str, Any]]:
    """Arguments for ``demo.tasks.resize_image``; the URL says whether it will fail."""
    image = uuid.uuid4().hex[:12]
    if rng.random() < fail_share:
        # Half of the failures are explicit Reject()s, half are plain exceptions.
        url = (
            f"s3://demo-images/corrupt/{image}.jpg"
            if rng.random() < 0.5
            else (f"s3://demo-images/uploads/{image}.tiff")
        )
    elif rng.random() < 0.1:
        url = f"s3://demo-images/flaky/{image}.png"  # retried once, then succeeds
    else:
        url = f"s3://demo-images/uploads/{image}.{rng.choice(['jpg', 'png', 'webp'])}"
    return [image, url], {"sizes": rng.sample([64, 128, 256, 512, 1024], k=2), "quality": 85}


def encode(payload: dict[str, Any], rng: random.Random) -> Encoded:
    """JSON two times in three, MessagePack otherwise."""
    if rng.random() < 2 / 3:
        return Encoded(json.dumps(payload, separators=(",", ":")).encode(), JSON)
    return Encoded(msgpack.packb(payload, use_bin_type=True), MSGPACK)


def decode(body: bytes, content_type: str | None) -> dict[str, Any]:
    try:
        value = msgpack.unpackb(body, raw=False) if content_type == MSGPACK else json.loads(body)
    except (ValueError, TypeError) as exc:  # msgpack's and json's errors are ValueErrors
        raise InvalidPayload(f"undecodable {content_type or 'body'}: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidPayload(f"expected an object, got {type(value).__name__}")
    return value


def check(payload: dict[str, Any]) -> None:
    """What every demo consumer does first: refuse poison."""
    if payload.get("poison"):
        raise InvalidPayload(str(payload.get("poison_reason", "poison message")))
