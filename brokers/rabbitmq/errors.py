"""RabbitMQ's AMQP failures as BrokerErrors that say what failed and why.

:func:`amqp_errors` wraps channel work (browse, peek, publish, purge, tail);
:func:`reason` shortens a connection failure for users. The errors of opening
a connection are translated where connections are opened
(``brokers.rabbitmq.connection``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aiormq
import aiormq.exceptions

from brokers.base import (
    BrokerAuthError,
    BrokerError,
    BrokerTimeout,
    BrokerUnavailable,
    NotFound,
)
from brokers.rabbitmq.models import Unroutable


@contextlib.contextmanager
def amqp_errors(where: str, timeout: float) -> Iterator[None]:
    """Turn aiormq/aio-pika failures inside the block into BrokerErrors that say what."""
    try:
        yield
    except BrokerError:
        raise
    except aiormq.exceptions.PublishError as exc:
        raise Unroutable(
            f"{where}: the message could not be routed to any queue ({_reply_text(exc)});"
            " nothing was delivered"
        ) from None
    except aiormq.exceptions.DeliveryError as exc:
        raise BrokerError(f"{where}: the broker refused the message ({exc})") from None
    except aiormq.exceptions.ChannelNotFoundEntity as exc:
        raise NotFound(f"{where}: {_amqp_text(exc)}") from None
    except aiormq.exceptions.ChannelAccessRefused as exc:
        raise BrokerAuthError(f"{where}: access refused: {_amqp_text(exc)}") from None
    except aiormq.exceptions.ChannelLockedResource as exc:
        raise BrokerError(
            f"{where}: in exclusive use by another client: {_amqp_text(exc)}"
        ) from None
    except aiormq.exceptions.ChannelClosed as exc:
        raise BrokerError(f"{where}: the broker closed the channel: {_amqp_text(exc)}") from None
    except (aiormq.exceptions.AMQPConnectionError, ConnectionError) as exc:
        raise BrokerUnavailable(f"{where}: the AMQP connection failed: {reason(exc)}") from None
    except (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError) as exc:
        raise BrokerError(f"{where}: AMQP error: {reason(exc)}") from None
    except TimeoutError:
        raise BrokerTimeout(f"{where}: no answer within {timeout:g} s") from None


def _amqp_text(exc: BaseException) -> str:
    """The broker's reply text, e.g. ``NOT_FOUND - no queue 'x' in vhost 'y'``."""
    args = [a for a in getattr(exc, "args", ()) if isinstance(a, str)]
    return (args[-1] if args else str(exc))[:300]


def _reply_text(exc: aiormq.exceptions.DeliveryError) -> str:
    frame = exc.frame
    reply = getattr(frame, "reply_text", None)
    return str(reply) if reply else str(exc)


def reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "ConnectionRefused" in text or "Errno 111" in text:
        return "connection refused (is the broker running and the port right?)"
    return text[:200]
