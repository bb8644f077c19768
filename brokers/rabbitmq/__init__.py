"""Everything RabbitMQ: the adapter and the modules it is made of.

* :mod:`.adapter`: :class:`RabbitMQBroker` (connect, ping, overview, browsing);
* :mod:`.connection`: every AMQP connection, the TLS context, AMQP wire helpers;
* :mod:`.http`: the management HTTP API client; :mod:`.errors`: AMQP failures
  as BrokerErrors; :mod:`.models`: frozen results; :mod:`.values`: quoting and
  reading management API values;
* :mod:`.inventory`, :mod:`.topology`, :mod:`.routes`: queues, exchanges,
  vhosts, bindings, policies and dead-letter routes;
* :mod:`.messages` and :mod:`.delivery_limit`: peek, publish, purge;
* :mod:`.deadletters`: discovery, capture and requeue of dead letters;
* :mod:`.metrics`: reads for sampling, and :mod:`.sampler` the metrics
  capability built on them; :mod:`.tail`: live tails; :mod:`.move`: moving
  messages between queues.

No Django here. The registry names ``brokers.rabbitmq.RabbitMQBroker``.
"""

from __future__ import annotations

from brokers.rabbitmq.adapter import RabbitMQBroker

__all__ = ["RabbitMQBroker"]
