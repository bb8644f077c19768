"""Browsing the brokers: clusters, queues, topics, consumer groups and messages."""
