"""Browsing Kafka: topics, consumer groups and records, as pages and as JSON."""
