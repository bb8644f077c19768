"""Dead letters on RabbitMQ and Kafka: where they are, what they say, and how to capture them.

Django-free, like the rest of ``brokers/``:

* :mod:`.discovery` finds dead-letter queues and topics and what feeds them;
* :mod:`.metadata` turns headers into a normalised :class:`FailureInfo` with a
  grouping fingerprint (:mod:`.fingerprint`, :mod:`.conventions`);
* :mod:`.rabbitmq_capture` and :mod:`.kafka_capture` drain a DLQ into a
  :class:`CaptureSink` (the database), acknowledging or committing only what
  the sink has stored (:mod:`.model`);
* :mod:`.values` stores header values as reversible JSON.
"""

from __future__ import annotations

from .metadata import FailureInfo, amqp_failure_info, kafka_failure_info

__all__ = ["FailureInfo", "amqp_failure_info", "kafka_failure_info"]
