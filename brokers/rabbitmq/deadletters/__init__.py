"""RabbitMQ dead letters: where they are, how to capture them, how to send them back.

* :mod:`.discovery` finds dead-letter queues and what feeds them (dead-letter
  exchanges, followed through their bindings);
* :mod:`.capture` drains a DLQ into a sink (the database), acking only what the
  sink has stored;
* :mod:`.requeue` publishes letters back with confirms, one or a batch.

The broker-neutral types are in :mod:`brokers.base.deadletters`; failure
metadata and the JSON form of header values in :mod:`brokers.decode`.
"""
