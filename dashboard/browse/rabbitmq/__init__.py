"""Browsing RabbitMQ: queues, exchanges, vhosts and messages."""
