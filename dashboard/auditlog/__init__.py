"""The audit log page: every :class:`~dashboard.models.AuditEntry`, for admins.

- ``services``: the filters (user, action, cluster, outcome, time range), the keyset page
  (newest first, by time then id, so a page costs one index range at any depth), the CSV rows
  (formula cells neutralised).
- ``views`` and ``urls``: the page at ``/audit/`` and its export at ``/audit/export.csv``.
"""
