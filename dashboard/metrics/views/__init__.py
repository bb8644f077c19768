"""Pages of the metrics feature: ``charts`` (live charts of every cluster, one cluster,
one entity, and Prometheus's /metrics) and ``consumers_page`` (everything that consumes)."""
