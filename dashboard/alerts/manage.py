"""Alert rules, silences and acknowledgements as people change them: checked, audited.

Operators create, edit, enable, disable and delete rules, create and expire silences,
and acknowledge alerts; viewers read. Every change writes one audit entry,
``alerts.<change>``, whose parameters hold the thing as it was (``before``) and as it
is (``after``); a change refused for the role is audited too.

Input is bounded and a bad value is an ``InvalidField`` naming its field (a 400 in the
API, the field marked on the page): names up to 200 characters; patterns through the
retry policies' RE2 matcher (``rules.validate_pattern``); thresholds finite, with the
resolve threshold on the resolving side of the threshold (hysteresis); ``for`` up to
:data:`MAX_FOR` seconds, repeats up to :data:`MAX_REPEAT`; silences last between
:data:`MIN_SILENCE` and :data:`MAX_SILENCE` seconds, match on the engine's labels
(rule, kind, cluster, entity: globs) and carry a reason.

Acknowledging an alert, and a silence starting or ending over active alerts, tell open
pages once the change commits (``live``).

Reading: :func:`get_alerts` lists pending and firing alerts first (firing before
pending), then the most recently resolved, each with whether an active silence
matches it now.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest
from django.utils import timezone

from dashboard.alerts import live
from dashboard.alerts.engine import active_silences, silence_matcher, silenced
from dashboard.alerts.rules import FIXED, validate_pattern
from dashboard.core import display
from dashboard.core.audit import record
from dashboard.core.clusters import sync_cluster_rows
from dashboard.core.params import InvalidInput, check_texts
from dashboard.core.roles import OPERATOR, has_role
from dashboard.models import Alert, AlertChannel, AlertRule, AuditEntry, Cluster, Silence

AnyUser = AbstractBaseUser | AnonymousUser
MAX_NAME = 200
MAX_PATTERN = 512
MAX_VALUE = 1e15
MAX_FOR = 7 * 24 * 3600.0
MAX_REPEAT = 30 * 24 * 3600.0
MIN_SILENCE = 60.0
MAX_SILENCE = 90 * 24 * 3600.0
MAX_REASON = 1000
MAX_RESOLVED = 200  # resolved alerts the page lists
LABELS = ("rule", "kind", "cluster", "entity")
ACTIVE = (Alert.State.PENDING, Alert.State.FIRING)
MAX_ID = 2**63 - 1


class InvalidField(InvalidInput):
    """A value that cannot be used; ``field`` names it (the API answers 400 with it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


display.register("alert_firing", "Firing", display.DANGER)
display.register("alert_pending", "Pending", display.WARN)
display.register("alert_resolved", "Resolved", display.OK)
display.register("alert_silenced", "Silenced", display.MUTED)
display.register("alert_acknowledged", "Acknowledged", display.INFO)
display.register("rule_enabled", "Enabled", display.OK)
display.register("rule_disabled", "Disabled", display.MUTED)
display.register("silence_active", "Active", display.INFO)
display.register("silence_ended", "Ended", display.MUTED)
display.register("silence_scheduled", "Scheduled", display.MUTED)


def _number(name: str, raw: Any, *, required: bool = True) -> float | None:
    text = str(raw if raw is not None else "").strip()
    if text == "":
        if required:
            raise InvalidField(name, "is required")
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidField(name, f"{text[:40]!r} is not a number") from None
    if not math.isfinite(value) or abs(value) > MAX_VALUE:
        raise InvalidField(name, "is a finite number")
    return value


@dataclass(frozen=True)
class RuleInput:
    """A rule as submitted; ``cluster`` is a slug ("" for every cluster), ``channels`` names."""

    name: str
    kind: str
    cluster: str = ""
    syntax: str = AlertRule.Syntax.GLOB.value
    pattern: str = ""
    comparison: str = AlertRule.Comparison.GT.value
    threshold: float = 0.0
    resolve_threshold: float | None = None
    for_seconds: float = 0.0
    repeat_seconds: float = 0.0
    enabled: bool = True
    channels: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_form(cls, data: Any) -> RuleInput:
        """From a POSTed form (a QueryDict): numbers parsed, errors naming the field."""
        return cls(
            name=str(data.get("name", "")).strip(),
            kind=str(data.get("kind", "")),
            cluster=str(data.get("cluster", "")),
            syntax=str(data.get("syntax", "")),
            pattern=str(data.get("pattern", "")).strip(),
            comparison=str(data.get("comparison", AlertRule.Comparison.GT.value)),
            threshold=_number("threshold", data.get("threshold", "0")) or 0.0,
            resolve_threshold=_number(
                "resolve_threshold", data.get("resolve_threshold"), required=False
            ),
            for_seconds=_number("for_seconds", data.get("for_seconds", "0")) or 0.0,
            repeat_seconds=_number("repeat_seconds", data.get("repeat_seconds", "0")) or 0.0,
            enabled=data.get("enabled") in ("on", "1", "true"),
            channels=tuple(str(c) for c in data.getlist("channels")),
        ).checked()

    def checked(self) -> RuleInput:
        check_texts(asdict(self), InvalidField)
        """This input, or an InvalidField naming the first bad value."""
        if not self.name.strip():
            raise InvalidField("name", "is required")
        if len(self.name) > MAX_NAME:
            raise InvalidField("name", f"is at most {MAX_NAME} characters")
        if self.kind not in AlertRule.Kind.values:
            raise InvalidField("kind", f"is one of {', '.join(AlertRule.Kind.values)}")
        if self.syntax not in AlertRule.Syntax.values:
            raise InvalidField("syntax", "is exact, glob or regex")
        if len(self.pattern) > MAX_PATTERN:
            raise InvalidField("pattern", f"is at most {MAX_PATTERN} characters")
        try:
            validate_pattern(self.syntax, self.pattern)
        except InvalidInput as exc:
            field = getattr(exc, "field", "pattern")
            raise InvalidField(field, str(exc).removeprefix(f"{field}: ")) from None
        if self.comparison not in AlertRule.Comparison.values:
            raise InvalidField("comparison", "is gt, gte, lt or lte")
        for name in ("threshold", "resolve_threshold", "for_seconds", "repeat_seconds"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or abs(value) > MAX_VALUE):
                raise InvalidField(name, "is a finite number")
        resolve = self.resolve_threshold
        if resolve is not None and self.kind not in FIXED:
            upward = self.comparison in ("gt", "gte")
            if upward and resolve > self.threshold:
                raise InvalidField("resolve_threshold", "is at most the threshold")
            if not upward and resolve < self.threshold:
                raise InvalidField("resolve_threshold", "is at least the threshold")
        if not 0 <= self.for_seconds <= MAX_FOR:
            raise InvalidField("for_seconds", f"is between 0 and {int(MAX_FOR)} seconds")
        if not 0 <= self.repeat_seconds <= MAX_REPEAT:
            raise InvalidField("repeat_seconds", f"is between 0 and {int(MAX_REPEAT)} seconds")
        if self.cluster and self.cluster not in sync_cluster_rows():
            raise InvalidField("cluster", f"no cluster {self.cluster[:100]!r}")
        if len(self.channels) > 50:
            raise InvalidField("channels", "at most 50")
        known = set(
            AlertChannel.objects.filter(name__in=self.channels).values_list("name", flat=True)
        )
        missing = [c for c in self.channels if c not in known]
        if missing:
            raise InvalidField("channels", f"no channel {missing[0][:100]!r}")
        return self

    def model_values(self) -> dict[str, Any]:
        return {
            "name": self.name.strip(),
            "kind": self.kind,
            "cluster": sync_cluster_rows()[self.cluster] if self.cluster else None,
            "syntax": self.syntax,
            "pattern": self.pattern,
            "comparison": self.comparison,
            "threshold": self.threshold,
            "resolve_threshold": self.resolve_threshold,
            "for_seconds": self.for_seconds,
            "repeat_seconds": self.repeat_seconds,
            "enabled": self.enabled,
        }


def snapshot(rule: AlertRule) -> dict[str, Any]:
    """A rule's values as the audit keeps them (and as the form shows them)."""
    return {
        "name": rule.name,
        "kind": rule.kind,
        "cluster": rule.cluster.slug if rule.cluster_id and rule.cluster else "",
        "syntax": rule.syntax,
        "pattern": rule.pattern,
        "comparison": rule.comparison,
        "threshold": rule.threshold,
        "resolve_threshold": rule.resolve_threshold,
        "for_seconds": rule.for_seconds,
        "repeat_seconds": rule.repeat_seconds,
        "enabled": rule.enabled,
        "channels": sorted(c.name for c in rule.channels.all()) if rule.pk else [],
    }


def _require_operator(user: AnyUser, action: str, target: str, request: HttpRequest | None) -> None:
    if has_role(user, OPERATOR):
        return
    record(
        action=action,
        user=user,
        target=target,
        outcome=AuditEntry.Outcome.REFUSED,
        detail="needs the operator role",
        request=request,
    )
    raise PermissionDenied("this needs the operator role")


def _real(user: AnyUser) -> User | None:
    return user if isinstance(user, User) and user.is_authenticated else None


def _get(rows: Any, pk: int, what: str) -> Any:
    if not 1 <= pk <= MAX_ID:
        raise Http404(f"no {what} #{pk}")
    row = rows.filter(pk=pk).first()
    if row is None:
        raise Http404(f"no {what} #{pk}")
    return row


def get_rule(rule_id: int) -> AlertRule:
    rule: AlertRule = _get(AlertRule.objects.select_related("cluster"), rule_id, "alert rule")
    return rule


def _audit_rule(
    change: str,
    user: AnyUser,
    rule: AlertRule,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    request: HttpRequest | None,
) -> None:
    record(
        action=f"alerts.rule_{change}",
        user=user,
        cluster=rule.cluster if rule.cluster_id else None,
        target=f"alert rule #{rule.pk} {rule.name!r}",
        parameters={"before": before, "after": after},
        request=request,
    )


def _set_channels(rule: AlertRule, names: tuple[str, ...]) -> None:
    rule.channels.set(AlertChannel.objects.filter(name__in=names))


def do_create_rule(
    *, user: AnyUser, data: RuleInput, request: HttpRequest | None = None
) -> AlertRule:
    _require_operator(user, "alerts.rule_create", f"alert rule {data.name[:200]!r}", request)
    data.checked()
    with transaction.atomic():
        rule = AlertRule.objects.create(**data.model_values(), created_by=_real(user))
        _set_channels(rule, data.channels)
        _audit_rule("create", user, rule, None, snapshot(rule), request)
    return rule


def do_update_rule(
    *, user: AnyUser, rule_id: int, data: RuleInput, request: HttpRequest | None = None
) -> AlertRule:
    _require_operator(user, "alerts.rule_update", f"alert rule #{rule_id}", request)
    data.checked()
    with transaction.atomic():
        rule = get_rule(rule_id)
        before = snapshot(rule)
        for name, value in data.model_values().items():
            setattr(rule, name, value)
        rule.save()
        _set_channels(rule, data.channels)
        _audit_rule("update", user, rule, before, snapshot(rule), request)
    return rule


def do_set_rule_enabled(
    *, user: AnyUser, rule_id: int, enabled: bool, request: HttpRequest | None = None
) -> AlertRule:
    """Enable or disable: a disabled rule's alerts resolve at the next sample."""
    _require_operator(user, "alerts.rule_enable", f"alert rule #{rule_id}", request)
    with transaction.atomic():
        rule = get_rule(rule_id)
        before = snapshot(rule)
        rule.enabled = enabled
        rule.save(update_fields=["enabled", "updated_at"])
        _audit_rule("enable", user, rule, before, snapshot(rule), request)
    return rule


def do_delete_rule(*, user: AnyUser, rule_id: int, request: HttpRequest | None = None) -> str:
    """Its alerts stay, with the rule's name; active ones resolve at the next sample."""
    _require_operator(user, "alerts.rule_delete", f"alert rule #{rule_id}", request)
    with transaction.atomic():
        rule = get_rule(rule_id)
        _audit_rule("delete", user, rule, snapshot(rule), None, request)
        name = rule.name
        rule.delete()
    return name


# -- silences ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SilenceInput:
    """Matchers (label -> glob; empty globs dropped), how long it lasts, and why."""

    matchers: dict[str, str]
    duration_seconds: float
    reason: str

    @classmethod
    def from_form(cls, data: Mapping[str, Any]) -> SilenceInput:
        return cls(
            matchers={label: str(data.get(label, "")).strip() for label in LABELS},
            duration_seconds=_number("duration_seconds", data.get("duration_seconds")) or 0.0,
            reason=str(data.get("reason", "")).strip(),
        ).checked()

    def checked(self) -> SilenceInput:
        check_texts({"reason": self.reason, **self.matchers}, InvalidField)
        for label, glob in self.matchers.items():
            if label not in LABELS:
                raise InvalidField("matchers", f"labels are {', '.join(LABELS)}")
            if not isinstance(glob, str) or len(glob) > MAX_PATTERN:
                raise InvalidField(label, f"is at most {MAX_PATTERN} characters")
        if not any(self.matchers.values()):
            raise InvalidField("matchers", "at least one matcher is needed")
        duration = self.duration_seconds
        if not math.isfinite(duration) or not MIN_SILENCE <= duration <= MAX_SILENCE:
            raise InvalidField(
                "duration_seconds", f"is between {int(MIN_SILENCE)} and {int(MAX_SILENCE)} seconds"
            )
        if not self.reason.strip():
            raise InvalidField("reason", "is required")
        if len(self.reason) > MAX_REASON:
            raise InvalidField("reason", f"is at most {MAX_REASON} characters")
        return self

    def kept(self) -> dict[str, str]:
        return {label: glob for label, glob in self.matchers.items() if glob}


def silence_snapshot(silence: Silence) -> dict[str, Any]:
    return {
        "matchers": silence.matchers,
        "starts_at": display.iso(silence.starts_at),
        "ends_at": display.iso(silence.ends_at),
        "reason": silence.reason,
    }


def _audit_silence(
    change: str,
    user: AnyUser,
    silence: Silence,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    request: HttpRequest | None,
) -> None:
    record(
        action=f"alerts.silence_{change}",
        user=user,
        target=f"silence #{silence.pk}",
        parameters={"before": before, "after": after},
        request=request,
    )


def do_create_silence(
    *, user: AnyUser, data: SilenceInput, request: HttpRequest | None = None
) -> Silence:
    _require_operator(user, "alerts.silence_create", "silence", request)
    data.checked()
    now = timezone.now()
    with transaction.atomic():
        silence = Silence.objects.create(
            matchers=data.kept(),
            starts_at=now,
            ends_at=now + timedelta(seconds=data.duration_seconds),
            reason=data.reason.strip(),
            created_by=_real(user),
        )
        _audit_silence("create", user, silence, None, silence_snapshot(silence), request)
        _publish_silence(silence, "silenced")
    return silence


def get_silence(silence_id: int) -> Silence:
    silence: Silence = _get(Silence.objects.select_related("created_by"), silence_id, "silence")
    return silence


def do_expire_silence(
    *, user: AnyUser, silence_id: int, request: HttpRequest | None = None
) -> Silence:
    """End it now; alerts it held back are notified at the next sample."""
    _require_operator(user, "alerts.silence_expire", f"silence #{silence_id}", request)
    now = timezone.now()
    with transaction.atomic():
        silence = get_silence(silence_id)
        if silence.ends_at <= now:
            raise InvalidField("silence", "has already ended")
        before = silence_snapshot(silence)
        silence.ends_at = now
        silence.save(update_fields=["ends_at"])
        _audit_silence("expire", user, silence, before, silence_snapshot(silence), request)
        _publish_silence(silence, "unsilenced")
    return silence


def publish_ended_silences(since: datetime, now: datetime) -> int:
    """Tell open pages of the active alerts of silences whose time ran out in
    ``(since, now]`` (nobody expired them, so nothing else says so); how many ended."""
    ended = list(Silence.objects.filter(ends_at__gt=since, ends_at__lte=now))
    for silence in ended:
        _publish_silence(silence, "unsilenced")
    return len(ended)


def _publish_silence(silence: Silence, change: live.ChangeName) -> None:
    """Tell open pages of the active alerts the silence matches (after the commit)."""
    matchers = [dict(silence.matchers)] if isinstance(silence.matchers, dict) else []
    rows = Alert.objects.select_related("cluster").filter(state__in=ACTIVE)
    changes = [
        live.Change(a.pk, a.cluster.slug, a.kind, a.entity, a.state, change)
        for a in rows
        if silenced(matchers, labels_of(a))
    ]
    live.publish_on_commit(changes, silence_matcher)


# -- acknowledgements -------------------------------------------------------------------


def get_alert(alert_id: int) -> Alert:
    alert: Alert = _get(Alert.objects.select_related("cluster"), alert_id, "alert")
    return alert


def do_acknowledge_alert(
    *, user: AnyUser, alert_id: int, request: HttpRequest | None = None
) -> Alert:
    """Someone is on it: the page says who and when (notifications go on as before)."""
    _require_operator(user, "alerts.alert_acknowledge", f"alert #{alert_id}", request)
    with transaction.atomic():
        alert = get_alert(alert_id)
        if alert.state == Alert.State.RESOLVED:
            raise InvalidField("alert", "is resolved")
        if alert.acknowledged_at is not None:
            raise InvalidField("alert", f"was acknowledged by {alert.acknowledged_by or 'someone'}")
        real = _real(user)
        alert.acknowledged_at = timezone.now()
        alert.acknowledged_by = real.get_username() if real else ""
        alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
        record(
            action="alerts.alert_acknowledge",
            user=user,
            cluster=alert.cluster,
            target=f"alert #{alert.pk} {alert.rule_name!r} on {alert.entity!r}",
            parameters={"state": alert.state, "fingerprint": alert.fingerprint},
            request=request,
        )
        change = live.Change(
            alert.pk, alert.cluster.slug, alert.kind, alert.entity, alert.state, "acknowledged"
        )
        live.publish_on_commit([change], silence_matcher)
    return alert


# -- reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRow:
    alert: Alert
    silenced: bool


def labels_of(alert: Alert) -> dict[str, str]:
    """The labels the engine matches silences on."""
    return {
        "rule": alert.rule_name,
        "kind": alert.kind,
        "cluster": alert.cluster.slug,
        "entity": alert.entity,
    }


def get_alerts(state: str = "", cluster: str = "") -> list[AlertRow]:
    """Firing, then pending (newest first), then the most recently resolved."""
    rows = Alert.objects.select_related("cluster")
    if cluster:
        rows = rows.filter(cluster__slug=cluster)
    found: list[Alert] = []
    if state in ("", "active", "firing"):
        found += rows.filter(state=Alert.State.FIRING).order_by("-fired_at", "-pk")
    if state in ("", "active", "pending"):
        found += rows.filter(state=Alert.State.PENDING).order_by("-started_at", "-pk")
    if state in ("", "resolved"):
        found += rows.filter(state=Alert.State.RESOLVED).order_by("-resolved_at", "-pk")[
            :MAX_RESOLVED
        ]
    silences = active_silences(timezone.now())
    return [
        AlertRow(a, a.state != Alert.State.RESOLVED and silenced(silences, labels_of(a)))
        for a in found
    ]


def get_rules() -> list[AlertRule]:
    return list(AlertRule.objects.select_related("cluster").prefetch_related("channels"))


def get_silences() -> list[Silence]:
    """Active and scheduled first (ending soonest first), then the last ended ones."""
    now = timezone.now()
    current = Silence.objects.select_related("created_by").filter(ends_at__gt=now)
    ended = Silence.objects.select_related("created_by").filter(ends_at__lte=now)
    return [*current.order_by("ends_at", "pk"), *ended.order_by("-ends_at", "-pk")[:50]]


def silence_state(silence: Silence) -> str:
    now = timezone.now()
    if silence.ends_at <= now:
        return "ended"
    return "active" if silence.starts_at <= now else "scheduled"


def cluster_choices() -> list[Cluster]:
    return sorted(sync_cluster_rows().values(), key=lambda c: c.slug)


def channel_choices() -> list[AlertChannel]:
    return list(AlertChannel.objects.order_by("name"))


def escape_glob(text: str) -> str:
    """A glob matching exactly ``text`` (for a silence made from one alert)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)
