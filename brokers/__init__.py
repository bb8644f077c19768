"""Django-free adapters for the message brokers the dashboard watches.

Nothing in this package imports Django: the dashboard reaches it only through
the dashboard's feature packages' services, and the adapters can be used from any asyncio program.

Layout: :mod:`brokers.base` (config, errors, results, the contract and
broker-neutral helpers), :mod:`brokers.registry` (kind -> adapter, the only
place that switches on kind), :mod:`brokers.decode` (decoding and dead-letter
metadata), one package per broker kind (:mod:`brokers.rabbitmq`,
:mod:`brokers.kafka`), and :mod:`brokers.celery_workers`, which asks Celery
workers on any kombu broker (Redis in practice) what they consume: it watches
workers, not a broker kind, so it is neither a kind's package nor neutral base.
"""
