"""The demo's own Celery app: real task messages on RabbitMQ that sometimes dead-letter.

Dashboards meet Celery's protocol-2 messages (headers ``task``, ``id``,
``argsrepr``, ``retries``; body ``[args, kwargs, embed]``) everywhere, so the
demo sends real ones through a real worker. The queue dead-letters into the
same ``dlx``/``dlq`` as the rest of the demo: with ``acks_late`` a task that
raises ``Reject(requeue=False)`` or fails (``task_acks_on_failure=False``) is
rejected, and RabbitMQ moves the message to ``dlq`` with an ``x-death`` header.

Worker: ``celery -A demo.celery_app worker --pool=solo -Q <prefix>celery-tasks``;
``DEMO_AMQP_URL`` and ``DEMO_PREFIX`` select the broker and the name prefix
(the queue is then ``<prefix>celery-tasks``). ``DEMO_RESULT_BACKEND`` (a
Redis URL; unset: no results) makes the worker store results as JSON, so the
dashboard (``MQB_DLQ_CELERY_RESULT_BACKEND`` set to the same URL) shows a
failed task's exception and traceback. An image URL with ``/once/`` fails the
first time its image id is seen by a worker process and succeeds after: a
transient failure that *Retry task* fixes. Every name Celery would
otherwise share across apps (control and event exchanges) carries the prefix.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from celery import Celery, Task
from celery.exceptions import Reject
from celery.signals import worker_ready
from kombu.entity import Exchange, Queue

from demo.topology import (
    DEFAULT_AMQP_URL,
    DLQ_ROUTING_KEY,
    RESIZE_TASK,
    Names,
    dead_letter_arguments,
)


class UnsupportedImageFormat(ValueError):
    """A plain task failure; with ``acks_on_failure=False`` it dead-letters too."""


class ObjectStoreTimeout(RuntimeError):
    """A transient failure: the same image works when the task runs again."""


_FAILED_ONCE: set[str] = set()  # image ids of "/once/" URLs that already failed here


def _durable_queue(
    name: str, exchange: str, routing_key: str, arguments: dict[str, Any] | None = None
) -> Any:
    """A kombu queue on a durable direct exchange, declared identically by every process."""
    return Queue(  # type: ignore[no-untyped-call]
        name,
        Exchange(exchange, type="direct", durable=True),  # type: ignore[no-untyped-call]
        routing_key=routing_key,
        durable=True,
        queue_arguments=arguments,
    )


def make_app(amqp_url: str | None = None, prefix: str | None = None) -> Celery:
    """A configured app; the workload builds its own, the worker uses ``app`` below."""
    url = amqp_url or os.environ.get("DEMO_AMQP_URL") or DEFAULT_AMQP_URL
    names = Names(os.environ.get("DEMO_PREFIX", "") if prefix is None else prefix)
    backend = os.environ.get("DEMO_RESULT_BACKEND") or None
    app = Celery("demo", broker=url, backend=backend, set_as_current=False)
    app.conf.update(
        task_queues=[
            _durable_queue(
                names.celery_queue,
                names.celery_queue,
                names.celery_queue,
                dead_letter_arguments(names),
            )
        ],
        task_default_queue=names.celery_queue,
        task_default_exchange=names.celery_queue,
        task_default_routing_key=names.celery_queue,
        task_create_missing_queues=False,
        control_exchange=names.celery_control,
        event_exchange=names.celery_events,
        event_queue_prefix=names.celery_events,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=backend is None,
        result_serializer="json",
        result_accept_content=["json"],
        result_expires=3600,
        task_acks_late=True,
        task_acks_on_failure=False,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=4,
        broker_transport_options={"confirm_publish": True},
        broker_heartbeat=30,
        worker_hijack_root_logger=True,
    )

    @app.task(name=RESIZE_TASK, bind=True, shared=False, acks_late=True, max_retries=2)  # type: ignore[untyped-decorator]
    def resize_image(
        self: Task, image_id: str, source_url: str, sizes: list[int], quality: int = 85
    ) -> dict[str, Any]:
        """Pretends to resize an image; the URL decides whether it fails."""
        time.sleep(random.uniform(0.02, 0.1))  # the "work"
        if "/corrupt/" in source_url:
            raise Reject(f"image {image_id} is corrupt: bad JPEG marker", requeue=False)
        if "/once/" in source_url and image_id not in _FAILED_ONCE:
            _FAILED_ONCE.add(image_id)
            raise ObjectStoreTimeout(f"image {image_id}: object store timed out")
        if source_url.endswith(".tiff"):
            raise UnsupportedImageFormat(f"{source_url}: TIFF is not supported")
        if "/flaky/" in source_url and self.request.retries == 0:
            raise self.retry(countdown=0.5, exc=TimeoutError("object store timed out"))
        return {"image_id": image_id, "sizes": sizes, "quality": quality}

    return app


def declare_topology(app: Celery, names: Names, connection: Any) -> None:
    """The Celery queue plus ``dlx``/``dlq``: a worker started first must not lose dead letters."""
    channel = connection.default_channel
    _durable_queue(names.dlq, names.dlx, DLQ_ROUTING_KEY)(channel).declare()
    for queue in app.amqp.queues.values():
        queue(channel).declare()


NAMES = Names(os.environ.get("DEMO_PREFIX", ""))
app = make_app(prefix=NAMES.prefix)


@worker_ready.connect(weak=False, dispatch_uid="demo-declare-topology")  # type: ignore[untyped-decorator]
def _declare_on_worker_ready(**_: object) -> None:
    with app.connection_for_write() as connection:
        declare_topology(app, NAMES, connection)
