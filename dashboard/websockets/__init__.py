"""Websocket consumers of the live pages; each checks the session user in ``connect``.

``overview`` (cluster health), ``jobs`` (one job's progress), ``metrics`` (live
charts) and ``tail`` (messages flowing through a queue or topic); ``routing.py``
maps their URLs. A socket without a logged-in session is closed with
:data:`UNAUTHENTICATED`.
"""

UNAUTHENTICATED = 4401
