"""HTML pages of the Kafka area: thin async views over ``dashboard.browse.kafka``."""
