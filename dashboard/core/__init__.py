"""Cross-cutting Django-side code every feature uses.

``env`` (settings from the environment), ``roles``, ``login``, ``audit``,
``cluster_config`` (what is configured) and ``clusters`` (its rows and health),
``connections`` (one adapter per cluster and event loop), ``limits`` (per-user
shares), ``params`` (bounded parsing of user input), ``errors`` (broker errors
as answers), ``api`` (the JSON API's plumbing and error shape),
``websocket_origin`` and ``channel_groups`` (live updates).
"""
