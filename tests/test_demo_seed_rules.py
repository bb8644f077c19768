"""The demo's retry policy and redirect: ``manage.py seed_rules`` (``scripts/demo.sh seed-rules``).

It runs in-process against the test clusters: a dry-run rule and a redirect are
added once, as the named admin, each with its audit entry; a second run changes
nothing; a user below admin is refused and nothing is stored.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from dashboard.models import AuditEntry, OriginRedirect, RetryPolicy

pytestmark = [pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]


def seed(username: str, vhost: str) -> str:
    out = io.StringIO()
    call_command(
        "seed_rules",
        "--as", username,
        "--cluster", "test-rabbitmq",
        "--vhost", vhost,
        "--policy", "Retry demo failures later",
        "--policy-dlq", "demo-dlq",
        "--redirect-from", "exchange=demo-events,routing_key=user.deleted",
        "--redirect-to", "routing_key=user.removed",
        "--redirect-note", "renamed",
        stdout=out,
    )  # fmt: skip
    return out.getvalue()


def test_it_adds_a_dry_run_rule_and_a_redirect_once_as_the_admin(
    use_clusters, admin_user_, rabbitmq_vhost
):
    first = seed(admin_user_.username, rabbitmq_vhost)
    assert "added, in dry-run mode" in first and "user.removed: added" in first
    [policy] = RetryPolicy.objects.all()
    assert policy.dry_run and policy.enabled and policy.match_dlq == "demo-dlq"
    assert policy.cluster is not None and policy.cluster.slug == "test-rabbitmq"
    [redirect] = OriginRedirect.objects.all()
    assert redirect.vhost == rabbitmq_vhost
    assert redirect.match == {"exchange": "demo-events", "routing_key": "user.deleted"}
    assert redirect.target == {"exchange": "", "routing_key": "user.removed"}
    audits = sorted(AuditEntry.objects.values_list("action", "username"))
    assert audits == [
        ("deadletters.policy_create", admin_user_.username),
        ("deadletters.redirect_create", admin_user_.username),
    ]

    again = seed(admin_user_.username, rabbitmq_vhost)
    assert "already there" in again and "added" not in again
    assert RetryPolicy.objects.count() == 1 and OriginRedirect.objects.count() == 1
    assert AuditEntry.objects.count() == 2


def test_a_user_below_admin_is_refused_and_nothing_is_stored(
    use_clusters, operator, rabbitmq_vhost
):
    with pytest.raises(CommandError, match="not an admin"):
        seed(operator.username, rabbitmq_vhost)
    assert not RetryPolicy.objects.exists() and not OriginRedirect.objects.exists()
