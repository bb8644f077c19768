"""Add the demo's alert rules and its "demo sink" webhook channel, as a named operator.

``make demo`` uses it so that alerts fire and resolve within a minute of starting
(``scripts/demo_incidents.py`` makes the incidents they watch for, on the demo's own
names, each carrying ``--prefix``):

* *Dead letters arriving on dlq*: more than ``--dlq-threshold`` letters captured from the
  RabbitMQ ``dlq`` in ``--dlq-window`` seconds (the workload's steady failures stay
  under it; a burst of poison messages goes over it, and the alert resolves once the
  burst has left the window);
* *user-events-processor lagging*: the Kafka group ``user-events-processor`` more than
  ``--lag-seconds`` seconds behind;
* *No consumers on task-queue*: the RabbitMQ ``task-queue`` without a consumer for
  ``--no-consumers-for`` seconds;

each notifying the webhook channel ``demo sink``, whose URL is read from the variable
``--sink-url-env`` and its HMAC secret from the file ``--sink-secret-file`` when sent.

Rules go through the same service as the rules page (``do_create_rule``: the role check,
validation and one audit entry each); the window of the arrivals rule, which the page
does not edit, is set after, audited as an ``alerts.rule_update``. The channel is
written directly (channels have no page yet) and audited as ``alerts.channel_create``.
Idempotent: a channel or rule whose name exists is left as it is and not audited again.

    manage.py seed_alerts --as demo --rabbitmq-cluster local-rabbitmq \\
        --kafka-cluster local-kafka --prefix "" --sink-secret-file var/demo-sink-secret
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from dashboard.alerts.manage import RuleInput, do_create_rule
from dashboard.core.audit import record
from dashboard.core.params import InvalidInput
from dashboard.core.roles import OPERATOR, has_role
from dashboard.models import AlertChannel, AlertRule

CHANNEL = "demo sink"


class Command(BaseCommand):
    help = "Add the demo's alert rules and its webhook sink channel (each only once)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--as", dest="username", required=True, help="an operator or admin")
        parser.add_argument("--rabbitmq-cluster", required=True, help="the demo's RabbitMQ slug")
        parser.add_argument("--kafka-cluster", required=True, help="the demo's Kafka slug")
        parser.add_argument("--prefix", default="", help="the demo's name prefix (DEMO_PREFIX)")
        parser.add_argument("--sink-url-env", default="MQB_DEMO_SINK_URL")
        parser.add_argument("--sink-secret-file", required=True)
        parser.add_argument("--dlq-window", type=float, default=20.0)
        parser.add_argument("--dlq-threshold", type=float, default=50.0)
        parser.add_argument("--lag-seconds", type=float, default=10.0)
        parser.add_argument("--no-consumers-for", type=float, default=5.0)

    def handle(self, *args: Any, **o: Any) -> None:
        user = get_user_model().objects.filter(username=o["username"]).first()
        if user is None:
            raise CommandError(f"no user {o['username']!r}: create it with ensure_user")
        if not has_role(user, OPERATOR):
            raise CommandError(f"{user.username} is not an operator")
        prefix = o["prefix"]
        self.channel(user, o["sink_url_env"], o["sink_secret_file"])
        rules = [
            (
                RuleInput(
                    name=f"Dead letters arriving on {prefix}dlq",
                    kind=AlertRule.Kind.DLQ_ARRIVALS.value,
                    cluster=o["rabbitmq_cluster"],
                    syntax=AlertRule.Syntax.EXACT.value,
                    pattern=f"{prefix}dlq",
                    threshold=o["dlq_threshold"],
                    channels=(CHANNEL,),
                ),
                o["dlq_window"],
            ),
            (
                RuleInput(
                    name=f"{prefix}user-events-processor lagging",
                    kind=AlertRule.Kind.GROUP_LAG_SECONDS.value,
                    cluster=o["kafka_cluster"],
                    syntax=AlertRule.Syntax.EXACT.value,
                    pattern=f"{prefix}user-events-processor",
                    threshold=o["lag_seconds"],
                    channels=(CHANNEL,),
                ),
                None,
            ),
            (
                RuleInput(
                    name=f"No consumers on {prefix}task-queue",
                    kind=AlertRule.Kind.NO_CONSUMERS.value,
                    cluster=o["rabbitmq_cluster"],
                    syntax=AlertRule.Syntax.EXACT.value,
                    pattern=f"{prefix}task-queue",
                    for_seconds=o["no_consumers_for"],
                    channels=(CHANNEL,),
                ),
                None,
            ),
        ]
        try:
            for data, window in rules:
                self.rule(user, data, window)
        except PermissionDenied:
            raise CommandError(f"{user.username} is not an operator") from None
        except InvalidInput as exc:
            raise CommandError(str(exc)) from None

    def channel(self, user: Any, url_env: str, secret_file: str) -> None:
        if AlertChannel.objects.filter(name=CHANNEL).exists():
            self.stdout.write(f"channel {CHANNEL!r}: already there")
            return
        with transaction.atomic():
            made = AlertChannel.objects.create(
                name=CHANNEL,
                kind=AlertChannel.Kind.WEBHOOK,
                url_env=url_env,
                secret_file=secret_file,
            )
            record(
                action="alerts.channel_create",
                user=user,
                target=f"alert channel #{made.pk} {CHANNEL!r}",
                parameters={"kind": made.kind, "url_env": url_env, "secret_file": secret_file},
            )
        self.stdout.write(f"channel #{made.pk} {CHANNEL!r}: added (URL from ${url_env})")

    def rule(self, user: Any, data: RuleInput, window: float | None) -> None:
        if AlertRule.objects.filter(name=data.name).exists():
            self.stdout.write(f"alert rule {data.name!r}: already there")
            return
        with transaction.atomic():
            rule = do_create_rule(user=user, data=data)
            if window is not None:
                AlertRule.objects.filter(pk=rule.pk).update(window_seconds=window)
                record(
                    action="alerts.rule_update",
                    user=user,
                    cluster=rule.cluster,
                    target=f"alert rule #{rule.pk} {rule.name!r}",
                    parameters={"window_seconds": window},
                )
        self.stdout.write(f"alert rule #{rule.pk} {data.name!r}: added")
