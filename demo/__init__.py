"""Demo workload: real RabbitMQ, Celery and Kafka traffic for the dashboard to show.

Run it with ``python -m demo.workload``; the Celery side needs its own worker,
``celery -A demo.celery_app worker --pool=solo -Q celery-tasks``.
"""
