"""Kafka dead letters: where they are, how to capture them, how to send them back.

* :mod:`.discovery` finds dead-letter topics, their source topics and depths;
* :mod:`.capture` reads a DLQ topic into a sink (the database), committing
  offsets only for what the sink has stored;
* :mod:`.requeue` produces records back with delivery reports, one or a batch.

The broker-neutral types are in :mod:`brokers.base.deadletters`; failure
metadata and the JSON form of header values in :mod:`brokers.decode`.
"""
