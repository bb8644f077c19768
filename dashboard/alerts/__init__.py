"""Alerts: rules on sampled values, evaluated by the collector, delivered through an outbox.

* ``rules``: a rule's matcher compiled once per rule version, and the index that
  finds every rule matching an entity in one pass;
* ``engine``: after each sample, pending -> firing -> resolved per rule and entity
  (Prometheus semantics: a ``for`` duration, hysteresis on resolve, one alert per
  fingerprint, repeats while firing, silences), writing notifications to the outbox;
* ``channels``: what a notification looks like per channel kind, and its secrets;
* ``delivery``: the sender that empties the outbox, at least once, with backoff;
* ``hook``: the one call the collector makes after each sample.
"""
