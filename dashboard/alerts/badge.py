"""The active alerts of every cluster, as the overview's badge counts them.

Read from the database at most once per ``MQB_HEALTH_REUSE_SECONDS`` (``core.recent``),
and again at once after this process saves or deletes an alert or a silence. A page
rendered in the event loop passes it to ``{% alerts_badge %}`` among its page parts
(``core.recent.kept_page_parts``, under ``PAGE_PART``).
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from dashboard.alerts.engine import silence_matcher
from dashboard.alerts.live import Tally, tally
from dashboard.core.recent import Recent
from dashboard.models import Alert, Silence

PAGE_PART = "alerts.every_cluster"


def _tally_all() -> Tally:
    return tally(silence_matcher())


every_cluster: Recent[Tally] = Recent(_tally_all, page_part=PAGE_PART)
"""The active alerts of every cluster, for the overview's badge."""


@receiver(post_save, sender=Alert)
@receiver(post_delete, sender=Alert)
@receiver(post_save, sender=Silence)
@receiver(post_delete, sender=Silence)
def _alerts_changed(sender: type[Alert] | type[Silence], **kwargs: object) -> None:
    every_cluster.forget()
