"""Browsing and managing what a broker holds: ``rabbitmq`` (queues, exchanges,
messages, vhosts) and ``kafka`` (topics, records, consumer groups)."""
