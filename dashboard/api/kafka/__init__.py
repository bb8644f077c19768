"""JSON API of the Kafka area (documented in ``schema.py``)."""
