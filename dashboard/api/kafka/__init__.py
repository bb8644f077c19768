"""JSON API of the Kafka area (documented in ``dashboard/api/schema_kafka.py``)."""
