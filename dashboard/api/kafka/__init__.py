"""JSON API of the Kafka area (documented in ``schemas.py``)."""
