"""The overview page: every cluster's health at a glance, kept live, and its JSON twin.

- ``views``: the page.  ``websockets``: the consumer pushing the collector's health.
- ``api``: the health of every cluster as JSON (``/api/clusters/health``).
"""
