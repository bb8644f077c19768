"""The only code that talks to brokers. ``get_*`` reads, ``do_*`` writes.

Views, the JSON API, Celery tasks, websocket consumers and the collector call
these functions; none of them imports ``brokers`` directly.
"""
