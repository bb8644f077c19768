"""What the dashboard remembers. Connection secrets never live here."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Cluster(models.Model):
    """A configured broker cluster, mirrored from settings, plus its last health check."""

    class Kind(models.TextChoices):
        RABBITMQ = "rabbitmq", "RabbitMQ"
        KAFKA = "kafka", "Kafka"

    class Status(models.TextChoices):
        UNKNOWN = "unknown", "Not checked yet"
        OK = "ok", "Healthy"
        DOWN = "down", "Unavailable"

    slug = models.SlugField(unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=200)
    read_only = models.BooleanField(default=False)
    protected = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UNKNOWN)
    status_code = models.CharField(max_length=40, blank=True)
    status_detail = models.TextField(blank=True)
    version = models.CharField(max_length=100, blank=True)
    overview = models.JSONField(default=dict, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    down_since = models.DateTimeField(null=True, blank=True)
    last_check_ms = models.PositiveIntegerField(default=0)
    """how long the last check took, in milliseconds"""

    class Meta:
        ordering = ["kind", "slug"]

    def __str__(self) -> str:
        return self.name or self.slug


class ThroughputSample(models.Model):
    """One sample of one entity. ``resolution`` is the tier: raw, minute or hour."""

    class EntityType(models.TextChoices):
        CLUSTER = "cluster"
        QUEUE = "queue"
        TOPIC = "topic"
        GROUP = "group", "consumer group"

    class Resolution(models.TextChoices):
        RAW = "raw"
        MINUTE = "minute"
        HOUR = "hour"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="samples")
    entity_type = models.CharField(max_length=10, choices=EntityType.choices)
    entity = models.CharField(max_length=512)
    resolution = models.CharField(max_length=10, choices=Resolution.choices, default="raw")
    time = models.DateTimeField(db_index=True)
    depth = models.BigIntegerField(null=True)
    ready = models.BigIntegerField(null=True)
    unacked = models.BigIntegerField(null=True)
    publish_rate = models.FloatField(null=True)
    deliver_rate = models.FloatField(null=True)
    ack_rate = models.FloatField(null=True)
    consumers = models.IntegerField(null=True)
    lag = models.BigIntegerField(null=True)
    lag_seconds = models.FloatField(null=True)

    class Meta:
        indexes = [models.Index(fields=["cluster", "entity_type", "entity", "resolution", "time"])]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.entity} @ {self.time:%Y-%m-%d %H:%M:%S}"


class Consumer(models.Model):
    """An AMQP consumer, a Kafka group member or a Celery worker, as last seen."""

    class Kind(models.TextChoices):
        AMQP = "amqp", "AMQP consumer"
        KAFKA = "kafka", "Kafka group member"
        CELERY = "celery", "Celery worker"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="consumer_set")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    identity = models.CharField(max_length=512, help_text="consumer tag, member id or hostname")
    source = models.CharField(max_length=512, help_text="queue, topic or group consumed")
    client = models.CharField(max_length=512, blank=True, help_text="connection, client id")
    host = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=40, blank=True)
    details = models.JSONField(default=dict, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "kind", "identity", "source"], name="uniq_consumer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.identity} on {self.source}"


class DeadLetter(models.Model):
    """One captured dead letter. ``capture_key`` makes a redelivered capture a no-op."""

    class Status(models.TextChoices):
        PENDING = "pending"
        REQUEUED = "requeued"
        DISCARDED = "discarded"
        FAILED_AGAIN = "failed_again", "failed again"
        REQUEUE_FAILED = "requeue_failed", "requeue failed"
        # Claimed by a requeue in progress; a bulk job's claim names the job.
        REQUEUING = "requeuing", "being requeued"
        # Waiting for ``due_at``: the worker's dispatcher requeues it then.
        SCHEDULED = "scheduled"

    # Not indexed alone: the capture key's unique index starts with the cluster.
    cluster = models.ForeignKey(
        Cluster, on_delete=models.CASCADE, related_name="dead_letters", db_index=False
    )
    vhost = models.CharField(max_length=512, blank=True, help_text="RabbitMQ only")
    dlq = models.CharField(max_length=512, help_text="queue or topic the letter was captured from")
    capture_key = models.CharField(max_length=512)
    message_id = models.CharField(max_length=512, blank=True)
    origin_exchange = models.CharField(max_length=512, blank=True)
    origin_routing_key = models.CharField(max_length=512, blank=True)
    origin_queue = models.CharField(max_length=512, blank=True)
    origin_topic = models.CharField(max_length=512, blank=True)
    origin_partition = models.IntegerField(null=True, blank=True)
    origin_offset = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=100, blank=True)
    exception_class = models.CharField(max_length=512, blank=True)
    exception_message = models.TextField(blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    failure_details = models.JSONField(
        default=dict,
        blank=True,
        help_text="conventions read, notes on unreadable headers, Celery task, routing keys",
    )
    attempts = models.IntegerField(default=1)
    first_failed_at = models.DateTimeField(null=True, blank=True)
    last_failed_at = models.DateTimeField(null=True, blank=True)
    captured_at = models.DateTimeField(auto_now_add=True, db_index=True)
    key = models.BinaryField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    body = models.BinaryField(blank=True)
    body_size = models.BigIntegerField(default=0)
    body_truncated = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    acted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    acted_at = models.DateTimeField(null=True, blank=True)
    requeue_count = models.IntegerField(default=0)
    last_error = models.TextField(blank=True, help_text="why the last requeue failed")
    claim_job = models.BigIntegerField(
        null=True, blank=True, db_index=True, help_text="the bulk requeue job that claimed it"
    )
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="when a requeue last claimed it (status requeuing)"
    )
    failed_again_as = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    came_back = models.IntegerField(
        default=0, help_text="times this message was requeued and dead-lettered again, at capture"
    )
    poison = models.BooleanField(
        default=False,
        help_text="came back MQB_DEADLETTER_POISON_AFTER times or more: no automatic retry",
    )
    due_at = models.DateTimeField(
        null=True, blank=True, help_text="when a scheduled requeue sends it (status scheduled)"
    )
    schedule = models.ForeignKey(
        "RequeueSchedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="letters",
        db_index=False,
        help_text="the scheduled requeue that holds or sent it",
    )
    policy = models.ForeignKey(
        "RetryPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="letters",
        db_index=False,
        help_text="the retry policy that last acted on it (not a dry run)",
    )
    parked = models.BooleanField(
        default=False,
        help_text="a retry policy stopped retrying it: kept in the inbox, flagged",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "vhost", "dlq", "capture_key"], name="uniq_dead_letter_capture"
            )
        ]
        # Every index costs each captured row an insert and each settled row another (a
        # status change is never a HOT update), so the set is small: no index of a column
        # another index starts with, no LIKE-pattern twins (the only text search is
        # ``icontains``, which no B-tree serves), and the columns few rows have set are
        # partial indexes, which a row outside their condition never enters.
        indexes = [
            models.Index(fields=["cluster", "dlq", "status"]),
            models.Index(fields=["status", "due_at"], name="deadletter_due"),
            models.Index(fields=["message_id"], name="deadletter_message_id"),
            models.Index(fields=["fingerprint"], name="deadletter_fingerprint"),
            models.Index(
                fields=["acted_by"], name="deadletter_acted_by", condition=Q(acted_by__isnull=False)
            ),
            models.Index(
                fields=["failed_again_as"],
                name="deadletter_failed_again_as",
                condition=Q(failed_again_as__isnull=False),
            ),
            models.Index(
                fields=["schedule"], name="deadletter_schedule", condition=Q(schedule__isnull=False)
            ),
            models.Index(
                fields=["policy"], name="deadletter_policy", condition=Q(policy__isnull=False)
            ),
            models.Index(
                fields=["-captured_at", "-id"], name="deadletter_poison", condition=Q(poison=True)
            ),
            models.Index(
                fields=["-captured_at", "-id"], name="deadletter_parked", condition=Q(parked=True)
            ),
        ]

    def __str__(self) -> str:
        return f"dead letter #{self.pk} from {self.dlq}"


class RequeueSchedule(models.Model):
    """A requeue carried out later: at a time, after a delay, or spread with backoff.

    Its letters are ``scheduled`` with their own ``due_at`` and point here;
    the worker's dispatcher sends each when it is due. The counts of what it
    sent and what came back are read from its letters.
    """

    class State(models.TextChoices):
        ACTIVE = "active"
        FINISHED = "finished"
        CANCELLED = "cancelled"

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.ACTIVE)
    description = models.JSONField(
        default=dict, blank=True, help_text="what was chosen: ids, a group or a filter"
    )
    parameters = models.JSONField(
        default=dict, blank=True, help_text="at / delay / backoff (base, factor, cap, jitter)"
    )
    total = models.IntegerField(default=0, help_text="letters scheduled")
    cancelled = models.IntegerField(default=0, help_text="letters taken out before they were due")
    first_due = models.DateTimeField(null=True, blank=True)
    last_due = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"schedule #{self.pk}"


class RetryPolicy(models.Model):
    """An admin's rule: letters it matches at capture are retried later, then parked.

    Evaluated in ``position`` order as letters are captured; the first enabled,
    non-dry-run rule that matches acts. A dry-run rule records what it would
    have done (a ``PolicyDecision`` with ``dry_run``) and sends nothing.
    """

    class Syntax(models.TextChoices):
        GLOB = "glob"
        REGEX = "regex", "regular expression"

    class Action(models.TextChoices):
        RETRY = "retry", "retry, then park"
        PARK = "park"

    name = models.CharField(max_length=200)
    position = models.IntegerField(default=0, db_index=True)
    enabled = models.BooleanField(default=True)
    dry_run = models.BooleanField(default=True)
    cluster = models.ForeignKey(
        Cluster, null=True, blank=True, on_delete=models.CASCADE, help_text="empty: every cluster"
    )
    syntax = models.CharField(max_length=10, choices=Syntax.choices, default=Syntax.GLOB)
    match_dlq = models.CharField(max_length=512, blank=True)
    match_origin = models.CharField(max_length=512, blank=True)
    match_reason = models.CharField(max_length=512, blank=True)
    match_exception_class = models.CharField(max_length=512, blank=True)
    match_exception_message = models.CharField(max_length=512, blank=True)
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.RETRY)
    max_attempts = models.IntegerField(default=3, help_text="retries before the letter is parked")
    delay_seconds = models.FloatField(default=60.0, help_text="delay of the first retry")
    factor = models.FloatField(default=2.0, help_text="each retry waits this much longer")
    cap_seconds = models.FloatField(default=3600.0, help_text="longest delay")
    jitter = models.FloatField(default=0.1, help_text="random share of a delay, 0 to 1")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name_plural = "retry policies"

    def __str__(self) -> str:
        return self.name


class PolicyDecision(models.Model):
    """What a retry policy did, or would have done in a dry run, to one captured letter."""

    class Action(models.TextChoices):
        RETRY = "retry", "retry scheduled"
        PARK = "park", "parked"
        POISON = "poison", "left alone: poison"

    policy = models.ForeignKey(
        RetryPolicy, null=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    policy_name = models.CharField(max_length=200, help_text="the rule's name at the time")
    dead_letter = models.ForeignKey(
        DeadLetter, on_delete=models.CASCADE, related_name="policy_decisions"
    )
    at = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    attempt = models.IntegerField(default=0, help_text="retries before this one")
    due_at = models.DateTimeField(null=True, blank=True)
    dry_run = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["policy", "at"], name="policydecision_policy_at")]

    def __str__(self) -> str:
        return f"{self.policy_name}: {self.action} of dead letter #{self.dead_letter_id}"


class OriginRedirect(models.Model):
    """An old origin mapped to a new target: requeues to ``match`` go to ``target`` instead.

    ``match`` and ``target`` hold the kind's target fields (``target_fields``:
    exchange and routing key, or topic); an empty field in ``match`` matches
    any value, an empty field in ``target`` keeps the origin's.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="redirects")
    vhost = models.CharField(max_length=512, blank=True, help_text="RabbitMQ only")
    match = models.JSONField(default=dict)
    target = models.JSONField(default=dict)
    note = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"redirect #{self.pk}"


class DeadLetterBody(models.Model):
    """Every byte of a dead letter whose body is longer than ``MQB_DLQ_MAX_BODY``.

    ``DeadLetter.body`` then holds only the first ``MQB_DLQ_MAX_BODY`` bytes (enough
    to decode and show) and ``body_truncated`` is set; the whole body lives here,
    in its own table so that lists of dead letters never read it. Written in the
    same transaction as its DeadLetter.
    """

    dead_letter = models.OneToOneField(
        DeadLetter, primary_key=True, on_delete=models.CASCADE, related_name="full_body"
    )
    data = models.BinaryField()

    def __str__(self) -> str:
        return f"body of dead letter #{self.pk}"


class ManagedDeadLetterQueue(models.Model):
    """A DLQ an admin has taken over: the collector captures it into DeadLetter rows.

    Unmanaged DLQs are never consumed; they stay on the broker untouched.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="managed_dlqs")
    vhost = models.CharField(max_length=512, blank=True, help_text="RabbitMQ only")
    name = models.CharField(max_length=512)
    active = models.BooleanField(default=True)
    sources = models.JSONField(default=list, blank=True, help_text="queues/topics feeding it")
    managed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    managed_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)
    # Written by the collector's capture loop.
    captured_count = models.BigIntegerField(default=0, help_text="rows captured so far")
    last_captured_at = models.DateTimeField(null=True, blank=True)
    capture_error = models.TextField(blank=True, help_text="why capture is not running, if so")
    capture_error_at = models.DateTimeField(null=True, blank=True)
    capture_acked_through = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="RabbitMQ: every DeadLetter id up to this one is known to be acked",
    )
    capture_position = models.JSONField(
        default=dict,
        blank=True,
        help_text="Kafka: per partition, the offset capture committed (the next one to capture)",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cluster", "vhost", "name"], name="uniq_managed_dlq")
        ]

    def __str__(self) -> str:
        return f"{self.cluster.slug}:{self.vhost + '/' if self.vhost else ''}{self.name}"


class Job(models.Model):
    """A bulk action run by the worker, with its selection frozen at start."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PAUSED = "paused"
        CANCELLED = "cancelled"
        DONE = "done"
        FAILED = "failed"

    kind = models.CharField(max_length=50)
    cluster = models.ForeignKey(Cluster, null=True, on_delete=models.SET_NULL)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    parameters = models.JSONField(default=dict, blank=True)
    selection = models.JSONField(default=list, blank=True)
    rate_limit = models.FloatField(null=True, blank=True, help_text="messages per second")
    total = models.IntegerField(null=True, blank=True)
    done = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    verdict = models.TextField(blank=True)
    # Written by the worker (dashboard.jobs).
    rate = models.FloatField(null=True, blank=True, help_text="messages per second, last report")
    progress_at = models.DateTimeField(null=True, blank=True, help_text="the worker's last report")
    result = models.JSONField(default=dict, blank=True, help_text="the exact outcome, by kind")
    task_id = models.CharField(max_length=64, blank=True, help_text="the Celery task running it")
    worker = models.CharField(max_length=255, blank=True, help_text="the Celery worker running it")

    def __str__(self) -> str:
        return f"job #{self.pk} {self.kind} ({self.state})"


class AuditEntry(models.Model):
    """Who did what to which target. Written only through ``services.audit.record``."""

    class Outcome(models.TextChoices):
        OK = "ok"
        FAILED = "failed"
        REFUSED = "refused"

    time = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=100)
    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.SET_NULL)
    target = models.CharField(max_length=1024, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    detail = models.TextField(blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-time"]
        verbose_name_plural = "audit entries"
        # The audit log's filters, each read newest first straight from its index.
        indexes = [
            models.Index(fields=["username", "time"], name="audit_user_time"),
            models.Index(fields=["action", "time"], name="audit_action_time"),
            models.Index(fields=["cluster", "time"], name="audit_cluster_time"),
        ]

    def __str__(self) -> str:
        return f"{self.username or 'system'} {self.action} {self.target} ({self.outcome})"


class AlertChannel(models.Model):
    """Where notifications go. The URL and the signing secret are never stored: each is
    named by an environment variable or a file (``url_env`` / ``url_file``,
    ``secret_env`` / ``secret_file``) read when a notification is sent."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "webhook (signed JSON)"
        SLACK = "slack", "Slack incoming webhook"
        TEAMS = "teams", "Microsoft Teams incoming webhook"
        EMAIL = "email", "email"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.WEBHOOK)
    url_env = models.CharField(max_length=200, blank=True, help_text="variable holding the URL")
    url_file = models.CharField(max_length=1024, blank=True, help_text="file holding the URL")
    secret_env = models.CharField(max_length=200, blank=True, help_text="HMAC secret's variable")
    secret_file = models.CharField(max_length=1024, blank=True, help_text="HMAC secret's file")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Delivery health, written by the sender after every message: the error is the
    # sender's own sanitised text (it never holds the URL, a token or a password).
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    consecutive_failures = models.IntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlertRule(models.Model):
    """A condition on sampled values that fires an alert per matching entity.

    It fires once the condition has held for ``for_seconds``; a firing alert
    resolves once the value is back past ``resolve_threshold`` (the threshold
    itself when empty); while firing it is notified again every
    ``repeat_seconds`` (0: never).
    """

    class Kind(models.TextChoices):
        QUEUE_DEPTH = "queue_depth", "queue or topic depth"
        NO_CONSUMERS = "no_consumers", "no consumers"
        GROUP_LAG = "group_lag", "group lag (messages)"
        GROUP_LAG_SECONDS = "group_lag_seconds", "group lag (seconds)"
        DLQ_PENDING = "dlq_pending", "dead letters pending"
        DLQ_OLDEST_AGE = "dlq_oldest_age", "age of the oldest pending dead letter"
        CLUSTER_UNAVAILABLE = "cluster_unavailable", "cluster unavailable"
        DLQ_ARRIVALS = "dlq_arrivals", "dead letters arrived in the window"
        DLQ_CAME_BACK_RATIO = "dlq_came_back_ratio", "share of requeued letters that came back"
        DEPTH_GROWTH = "depth_growth", "queue or topic depth growth over the window"
        NOT_DELIVERING = "not_delivering", "messages ready but nothing delivered"
        GROUP_DRAIN_SECONDS = "group_drain_seconds", "group time to drain (seconds)"
        GROUP_EMPTY = "group_empty", "group without members"
        NODE_DOWN = "node_down", "broker node down"
        PARTITIONS_UNDER_REPLICATED = "partitions_under_replicated", "under-replicated partitions"
        PARTITIONS_OFFLINE = "partitions_offline", "offline partitions"
        BROKER_ALARM = "broker_alarm", "RabbitMQ memory or disk alarm"
        JOB_FAILED = "job_failed", "a job failed"
        CELERY_WORKER_GONE = "celery_worker_gone", "Celery worker gone"

    class Syntax(models.TextChoices):
        EXACT = "exact"
        GLOB = "glob"
        REGEX = "regex", "regular expression"

    class Comparison(models.TextChoices):
        GT = "gt", ">"
        GTE = "gte", ">="
        LT = "lt", "<"
        LTE = "lte", "<="

    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    cluster = models.ForeignKey(
        Cluster, null=True, blank=True, on_delete=models.CASCADE, help_text="empty: every cluster"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    syntax = models.CharField(max_length=10, choices=Syntax.choices, default=Syntax.GLOB)
    pattern = models.CharField(max_length=512, blank=True, help_text="empty: every entity")
    comparison = models.CharField(max_length=4, choices=Comparison.choices, default=Comparison.GT)
    threshold = models.FloatField(default=0.0)
    resolve_threshold = models.FloatField(null=True, blank=True)
    for_seconds = models.FloatField(default=0.0)
    repeat_seconds = models.FloatField(default=0.0)
    window_seconds = models.FloatField(
        default=300.0,
        help_text="the window of arrivals, came-back ratio, depth growth and failed jobs",
    )
    channels = models.ManyToManyField(AlertChannel, blank=True, related_name="rules")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class Alert(models.Model):
    """One rule's condition on one entity: pending until it has held long enough, then
    firing, then resolved. At most one pending or firing alert per fingerprint."""

    class State(models.TextChoices):
        PENDING = "pending"
        FIRING = "firing"
        RESOLVED = "resolved"

    rule = models.ForeignKey(AlertRule, null=True, on_delete=models.SET_NULL, related_name="alerts")
    rule_name = models.CharField(max_length=200, help_text="the rule's name at the time")
    kind = models.CharField(max_length=30)
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="alerts")
    entity = models.CharField(max_length=512)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    fingerprint = models.CharField(max_length=64, db_index=True)
    value = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField()
    fired_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=~models.Q(state="resolved"),
                name="alert_one_active_per_fingerprint",
            )
        ]
        indexes = [models.Index(fields=["cluster", "state"], name="alert_cluster_state")]

    def __str__(self) -> str:
        return f"{self.rule_name} {self.entity} ({self.state})"


class Silence(models.Model):
    """Notifications of alerts every matcher matches are not sent between ``starts_at`` and
    ``ends_at``. ``matchers`` maps a label (rule, kind, cluster, entity) to a glob."""

    matchers = models.JSONField(default=dict)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(db_index=True)
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-ends_at"]

    def __str__(self) -> str:
        return f"silence {self.matchers} until {self.ends_at}"


class AlertNotification(models.Model):
    """The outbox: one row per alert event per channel, kept until it is sent.

    ``notification_id`` is stable across retries (receivers deduplicate on it);
    ``payload`` is the event as it was when it happened. A sender claims a row
    until ``claimed_until``; a sender killed mid-send leaves the claim to expire.
    """

    class Event(models.TextChoices):
        FIRING = "firing"
        RESOLVED = "resolved"
        REPEAT = "repeat"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications")
    channel = models.ForeignKey(
        AlertChannel, on_delete=models.CASCADE, related_name="notifications"
    )
    event = models.CharField(max_length=10, choices=Event.choices)
    notification_id = models.CharField(max_length=64, unique=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    gave_up_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    group_key = models.CharField(
        max_length=64, blank=True, help_text="rows of one group to one channel go as one message"
    )
    claim_token = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["channel", "group_key"], name="alertnotif_channel_group")]

    def __str__(self) -> str:
        return f"{self.event} of alert {self.alert_id} to {self.channel_id}"


class CollectorLease(models.Model):
    """The collectors' fencing token: incremented by every collector that becomes leader.

    One row (``name="collector"``). The lease itself is a PostgreSQL advisory lock or a
    Redis key (``dashboard.collector.lease``); this row says who took it last and with
    which token, and the leader's commits check it (``lease.check_fence``).
    """

    name = models.CharField(max_length=40, unique=True)
    token = models.BigIntegerField(default=0)
    host = models.CharField(max_length=255, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    since = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} #{self.token} ({self.host}:{self.pid})"


class CollectorMember(models.Model):
    """One running collector process, leader or standby, as it last said."""

    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)
    is_leader = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["host", "pid", "started_at"], name="collector_member")
        ]

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}{' (leader)' if self.is_leader else ''}"
