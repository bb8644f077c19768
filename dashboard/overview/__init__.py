"""The overview page: every cluster's health at a glance, kept live.

- ``views``: the page.  ``websockets``: the consumer pushing the collector's health.
"""
