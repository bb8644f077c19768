"""HTML pages of the RabbitMQ browser: queues, a queue and its messages, exchanges, vhosts."""
