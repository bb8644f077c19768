"""What the live pages' websocket consumers share; each checks the session user in ``connect``.

The consumers live in their features: ``dashboard.overview.websockets`` (cluster
health), ``dashboard.jobs.websockets`` (one job's progress),
``dashboard.metrics.websockets`` (live charts) and ``dashboard.tail.websockets``
(messages flowing through a queue or topic); ``dashboard/routing.py`` maps their
URLs. A socket without a logged-in session is closed with :data:`UNAUTHENTICATED`.
"""

UNAUTHENTICATED = 4401
