"""Django-free adapters for the message brokers the dashboard watches.

Nothing in this package imports Django: the dashboard reaches it only through
``dashboard.services``, and the adapters can be used from any asyncio program.
"""
