"""Browsing brokers: queues, exchanges, topics and messages, per broker."""
