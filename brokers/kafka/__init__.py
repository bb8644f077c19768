"""Everything Kafka: the adapter and the modules it is made of.

* :mod:`.adapter`: :class:`KafkaBroker` (connect, ping, overview); :mod:`.calls`
  runs librdkafka's blocking calls; :mod:`.clients` keeps the pooled clients;
  :mod:`.errors` turns librdkafka errors into BrokerErrors; :mod:`.protocol`
  reads the broker version; :mod:`.metadata` summarises cluster metadata;
  :mod:`.bulk` makes admin calls with one future per request;
* :mod:`.models` and :mod:`.group_models`: frozen results;
* :mod:`.topics`, :mod:`.groups`, :mod:`.offsets`: topics, consumer groups and
  offset resets; :mod:`.browse` reads records; :mod:`.write` produces and purges;
* :mod:`.deadletters`: discovery, capture and requeue of dead letters;
* :mod:`.metrics`: lag and throughput reads, and :mod:`.sampler` (with
  :mod:`.rates`) the metrics capability built on them; :mod:`.tail`: live tails.

No Django here. The registry names ``brokers.kafka.KafkaBroker``.
"""

from __future__ import annotations

from brokers.kafka.adapter import KafkaBroker, Partition

__all__ = ["KafkaBroker", "Partition"]
