"""JSON API of the RabbitMQ browser, under ``/api/clusters/<slug>/rabbitmq/``.

It calls the same service functions as the HTML pages; every route is in
``dashboard/api/rabbitmq/schema.py``.
"""
