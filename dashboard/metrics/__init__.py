"""Live metrics: sampling every cluster, storing tiered history, serving it back.

- ``fields``: what a sample holds and how entities are named.
- ``rabbitmq`` / ``kafka``: samplers the collector drives (the only broker callers here).
- ``store``: raw rows, written only when a value changes (plus once a minute).
- ``downsample``: raw -> per-minute -> per-hour, and retention.
- ``history``: a chart's series for 1 h / 24 h / 7 d with honest gaps.
- ``snapshot`` / ``watchers``: the latest values and who is watching what, in Redis.
- ``consumers``: the consumers page.  ``prometheus``: the /metrics exposition.
- ``views/``: the pages; ``websockets``: live charts; ``urls``: routes (and the
  API's); ``tasks``: beat's downsampling and retention.
"""
