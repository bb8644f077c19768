"""The retry policies page (every rule in order, with its stats) and a rule's form.

Everyone reads the list; admins create, edit, move, switch modes and delete
(``deadletters.policies.rules`` checks the role and writes the audit). A rule's
form has a "Count matches" button that shows how many pending letters in the
inbox it would match now, without saving.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.views.decorators.http import require_GET, require_POST

from dashboard.core import once
from dashboard.core.params import InvalidInput, parse_int
from dashboard.core.roles import ADMIN, has_role
from dashboard.deadletters.policies import rules
from dashboard.deadletters.policies.matching import InvalidField
from dashboard.models import RetryPolicy


async def _render(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    # Context processors touch the database: render off the event loop.
    response: HttpResponse = await sync_to_async(render)(request, template, context, status=status)
    return response


@require_GET
async def policies(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    context = {
        "rows": await sync_to_async(rules.get_policies)(),
        "is_admin": await sync_to_async(has_role)(user, ADMIN),
    }
    return await _render(request, "deadletters/policies.html", context)


def _form_values(policy: RetryPolicy | None) -> dict[str, Any]:
    if policy is None:
        return rules.snapshot(RetryPolicy(name="", jitter=0.1)) | {"enabled": True}
    return rules.snapshot(policy)


def _shown(values: dict[str, Any]) -> dict[str, Any]:
    """The form's values as typed: a whole number of seconds reads 60, not 60.0."""
    return {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in values.items()}


async def _form_page(
    request: HttpRequest,
    policy: RetryPolicy | None,
    values: dict[str, Any],
    *,
    error: InvalidField | None = None,
    count: rules.MatchCount | None = None,
) -> HttpResponse:
    context = {
        "policy": policy,
        "values": _shown(values),
        "error": error,
        "count": count,
        "clusters": await sync_to_async(rules.cluster_choices)(),
        "syntaxes": RetryPolicy.Syntax.choices,
        "actions": RetryPolicy.Action.choices,
    }
    return await _render(
        request, "deadletters/policy_edit.html", context, status=400 if error else 200
    )


async def _admin(request: HttpRequest) -> None:
    if not await sync_to_async(has_role)(await request.auser(), ADMIN):
        raise PermissionDenied("editing retry policies needs the admin role")


async def _get_policy(policy_id: int) -> RetryPolicy:
    row = await sync_to_async(rules.get_policy)(policy_id)
    return row.policy


async def edit(request: HttpRequest, policy_id: int | None = None) -> HttpResponse:
    """GET: the form (an existing rule's shows its matches now); POST: save, or count."""
    policy = None if policy_id is None else await _get_policy(policy_id)
    if request.method == "POST":
        return await _save(request, policy)
    await _admin(request)
    values = _form_values(policy)
    count = None
    if policy is not None:
        data = rules.RuleInput(**{k: v for k, v in values.items() if k != "position"})
        count = await sync_to_async(rules.count_matching_now)(data)
    return await _form_page(request, policy, values, count=count)


@once.writes_once("deadletters.policy")
async def _save(request: HttpRequest, policy: RetryPolicy | None) -> HttpResponse:
    await _admin(request)
    user = await request.auser()
    values: dict[str, Any] = {k: request.POST.get(k, "") for k in _form_values(None)}
    values["enabled"] = request.POST.get("enabled") == "on"
    values["dry_run"] = request.POST.get("dry_run") == "on"
    try:
        data = rules.RuleInput.from_form(request.POST)
        if request.POST.get("check"):
            count = await sync_to_async(rules.count_matching_now)(data)
            return await _form_page(request, policy, values, count=count)
        if policy is None:
            saved = await sync_to_async(rules.do_create_policy)(
                user=user, data=data, request=request
            )
            done = "created"
        else:
            saved = await sync_to_async(rules.do_update_policy)(
                user=user, policy_id=policy.pk, data=data, request=request
            )
            done = "saved"
    except InvalidField as exc:
        return await _form_page(request, policy, values, error=exc)
    messages.success(request, f"Rule {saved.name!r} {done} ({_labelled(rules.mode_of(saved))}).")
    return redirect("deadletters-policies")


def _labelled(mode: str) -> str:
    return {"dry_run": "dry run", "active": "active", "disabled": "disabled"}.get(mode, mode)


@require_POST
@once.writes_once("deadletters.policy_mode")
async def mode(request: HttpRequest, policy_id: int) -> HttpResponseRedirect:
    try:
        policy = await sync_to_async(rules.do_set_mode)(
            user=await request.auser(),
            policy_id=policy_id,
            mode=request.POST.get("mode", ""),
            request=request,
        )
    except InvalidInput as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Rule {policy.name!r} is {_labelled(rules.mode_of(policy))}.")
    return redirect("deadletters-policies")


@require_POST
@once.writes_once("deadletters.policy_move")
async def move(request: HttpRequest, policy_id: int) -> HttpResponseRedirect:
    try:
        to = parse_int(request.POST.get("to"), name="to", low=0, high=1_000_000, error=InvalidInput)
        await sync_to_async(rules.do_move_policy)(
            user=await request.auser(), policy_id=policy_id, to=to, request=request
        )
    except InvalidInput as exc:
        messages.error(request, str(exc))
    return redirect("deadletters-policies")


@require_POST
@once.writes_once("deadletters.policy_delete")
async def delete(request: HttpRequest, policy_id: int) -> HttpResponseRedirect:
    policy = await _get_policy(policy_id)
    waiting = await sync_to_async(rules.do_delete_policy)(
        user=await request.auser(), policy_id=policy_id, request=request
    )
    done = f"Rule {policy.name!r} deleted; its decisions stay on the letters."
    if waiting:
        done += (
            f" {waiting} letter{pluralize(waiting)} it scheduled will still be sent when due;"
            " cancel them from the inbox (status: scheduled) to stop them."
        )
    messages.success(request, done)
    return redirect("deadletters-policies")
