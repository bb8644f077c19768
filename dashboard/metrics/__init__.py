"""Live metrics: sampling every cluster, storing tiered history, serving it back.

- ``fields``: what the dashboard stores and shows of a sample (the samplers the
  collector drives, and what a sample holds, are each broker kind's metrics
  capability: ``brokers.base.metrics``).
- ``store``: raw rows, written only when a value changes (plus once a minute).
- ``downsample``: raw -> per-minute -> per-hour, and retention.
- ``history``: a chart's series for 1 h / 24 h / 7 d with honest gaps.
- ``snapshot`` / ``watchers``: the latest values and who is watching what, in Redis.
- ``consumers``: the consumers page.  ``prometheus``: the /metrics exposition.
- ``views/``: the pages; ``websockets``: live charts; ``urls``: their routes;
  ``api``: the JSON API's router; ``events``: the typed messages the collector
  pushes to live charts; ``tasks``: beat's downsampling and retention.
"""
