"""Live tails: messages flowing through a RabbitMQ queue or a Kafka topic, in the browser.

- ``viewers``: ``join_tail``, the only way to a broker's tap.
- ``hub``: one running tail per entity per process, shared by its viewers, rate-limited.
- ``render``: a tapped message as the JSON a browser shows.
- ``websockets``: the consumers of ``/ws/tail/queue/`` and ``/ws/tail/topic/``.
- ``events``: the typed messages a tail sends to its viewers.
"""
