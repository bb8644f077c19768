"""The dead-letter inbox: groups by failure, a group's letters, one letter, and its actions.

Reads come from the database (``deadletters.inbox``); requeue and
discard go through ``deadletters.requeue``, ``.discard`` and
``.requeue_job``, which check roles and write the audit. Broker errors
propagate to ``dashboard.core.errors``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_POST

from brokers.base import validate
from brokers.base.deadletters import Edit, RequeueTarget
from brokers.registry import kind_named
from dashboard.core import letter_counts, once
from dashboard.core.audit import require_role
from dashboard.core.csrf import get_token
from dashboard.core.login import role_is_kept, shown_role
from dashboard.core.params import InvalidInput, parse_page
from dashboard.core.roles import ADMIN, OPERATOR, has_role
from dashboard.deadletters import celery_tasks, edit_body, loop_guard, preview, redirects, stuck
from dashboard.deadletters import discard as discards
from dashboard.deadletters import inbox as reads
from dashboard.deadletters import requeue as actions
from dashboard.models import DeadLetter

_ID = re.compile(r"[0-9]{1,18}")


async def _render(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    # Context processors touch the database: render off the event loop.
    response: HttpResponse = await sync_to_async(render)(request, template, context)
    return response


CSRF_SLOT = "mqb-csrf-slot"
"""Stands for the request's CSRF token in group rows rendered once for many requests."""


def _group_rows(request: HttpRequest, context: dict[str, Any]) -> SafeString:
    """The groups table's rows. They depend only on the page of groups, the filter and
    whether the user may act, so each (reused) page keeps its rows rendered once per
    ``can_act``; the request's own CSRF token is put in afterwards."""
    page = context["page"]
    rendered: dict[bool, str] = getattr(page, "rendered_rows", None) or {}
    can_act = bool(context["can_act"])
    rows = rendered.get(can_act)
    if rows is None:
        rows = render_to_string(
            "deadletters/_inbox_group_rows.html", {**context, "csrf_token": CSRF_SLOT}
        )
        page.rendered_rows = {**rendered, can_act: rows}
    if can_act:
        rows = rows.replace(CSRF_SLOT, get_token(request))
    return mark_safe(rows)  # noqa: S308 (rendered with autoescape; the token is alphanumeric)


def _inbox_context(
    request: HttpRequest, spec: reads.InboxFilter, page: Any, show_rows: bool
) -> dict[str, Any]:
    """The page's context from its (reused) page of groups or rows: reads nothing."""
    role = shown_role(request.user)  # what it offers; each action checks the role again
    context: dict[str, Any] = {
        "spec": spec,
        "query": urlencode(spec.as_params()),
        "statuses": reads.STATUSES,
        "show_rows": show_rows,
        "can_act": role in (OPERATOR, ADMIN),
        "is_admin": role == ADMIN,
    }
    if show_rows:
        kinds = [letter.has_vhosts for letter in page.object_list]
    else:
        kinds = [group["has_vhosts"] for group in page.object_list]
        # Pending and requeued always show; a rarer status only when a group shown has one
        # (a hidden column is zero in every row, so the columns shown still add up).
        context["parts"] = {"pending", "requeued"} | {
            part for part in reads.GROUP_PARTS for g in page.object_list if g[part]
        }
        context["came_back"] = any(g["failed_again"] for g in page.object_list)
        context["any_poison"] = any(g["poison_count"] for g in page.object_list)
    context["page"] = page
    context["poison_after"] = loop_guard.poison_after()
    # A vhost column only when a row shown belongs to a kind that has vhosts.
    context["show_vhosts"] = any(kinds)
    if not show_rows:
        context["group_rows"] = _group_rows(request, context)
    return context


def _inbox_page(
    request: HttpRequest,
    spec: reads.InboxFilter,
    number: int,
    show_rows: bool,
    status: int,
    stamp: tuple[Any, ...] | None = None,
) -> HttpResponse:
    """The inbox rendered in one thread: the (reused) counts, the role, the template."""
    page: Any = (
        reads.inbox_rows(spec, number, stamp)
        if show_rows
        else reads.inbox_groups(spec, number, stamp)
    )
    context = _inbox_context(request, spec, page, show_rows)
    return render(request, "deadletters/inbox.html", context, status=status)


@require_GET
async def inbox(request: HttpRequest) -> HttpResponse:
    status = 200
    try:
        spec = reads.InboxFilter.from_params(request.GET)
        number = parse_page(request.GET.get("page"), error=InvalidInput)
    except InvalidInput as exc:
        # The page still answers (unfiltered, with the reason shown), as a 400.
        messages.error(request, str(exc))
        spec, number, status = reads.InboxFilter(), 1, 400
    show_rows = bool(spec.group) or request.GET.get("view") == "rows"
    # A stamp read after the request came (shared with every request waiting meanwhile);
    # while the page of groups or rows is kept for it (and the role with the user), the
    # page renders in the event loop, else in a thread that counts.
    stamp = await letter_counts.astamp()
    page = letter_counts.kept(reads.inbox_key(spec, number, show_rows), stamp)
    if page is letter_counts.NOT_KEPT or not role_is_kept(request.user):
        response: HttpResponse = await sync_to_async(_inbox_page)(
            request, spec, number, show_rows, status, stamp
        )
        return response
    context = _inbox_context(request, spec, page, show_rows)
    return render(request, "deadletters/inbox.html", context, status=status)


async def _detail_context(request: HttpRequest, letter_id: int) -> dict[str, Any]:
    try:
        context = await sync_to_async(reads.get_dead_letter_detail)(letter_id)
    except DeadLetter.DoesNotExist:
        raise Http404(f"no dead letter #{letter_id}") from None
    letter = context["letter"]
    user = await request.auser()
    context["can_act"] = await sync_to_async(has_role)(user, OPERATOR)
    context["pending"] = letter.status in actions.CLAIMABLE
    context["poison_warning"] = loop_guard.warning(letter)
    context["stuck"] = await sync_to_async(stuck.is_stuck)(letter)
    context["dispatcher_resends"] = stuck.resent_by_dispatcher(letter)
    context["edit_headers"] = json.dumps(letter.headers, indent=2, ensure_ascii=False)
    form = edit_body.body_form(
        bytes(letter.body),
        content_type=str((letter.properties or {}).get("content_type") or "")
        if isinstance(letter.properties, dict)
        else "",
        decoded_format=context["body"].format,
    )
    context["edit_body"] = form.text
    context["edit_encoding"] = form.encoding
    context["edit_encodings"] = edit_body.NAMES
    context["editable"] = not letter.body_truncated
    context["task"] = await sync_to_async(celery_tasks.task_section)(letter, context["body"])
    # Where "Requeue to origin" sends the letter now: a redirect's target names it.
    # Where it goes does not depend on the body: the stored part is enough (a cut body's
    # full bytes are not read for it).
    route = await sync_to_async(redirects.goes_to)(
        letter.cluster.slug, actions.stored_letter(letter, whole=False)
    )
    context["route"] = route
    context["requeue_to"] = (
        f"{route.where} (redirect #{route.redirect})"
        if route.redirect is not None
        else context.get("origin", "")
    )
    return context


@require_GET
async def detail(request: HttpRequest, letter_id: int) -> HttpResponse:
    context = await _detail_context(request, letter_id)
    return await _render(request, "deadletters/detail.html", context)


@require_GET
async def body(request: HttpRequest, letter_id: int) -> HttpResponse:
    """The whole body as captured, as a download (never rendered: it is untrusted)."""
    try:
        data = await sync_to_async(reads.get_dead_letter_body)(letter_id)
    except DeadLetter.DoesNotExist:
        raise Http404(f"no dead letter #{letter_id}") from None
    response = HttpResponse(data, content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="dead-letter-{letter_id}.bin"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def requeue_form(post: Any, kind: str) -> tuple[RequeueTarget | None, Edit | None]:
    """Target and edit from a form or JSON object; empty fields mean "as captured".

    ``kind`` is the letter's cluster kind: it says which fields name a target.
    ``body_encoding`` says how the edited body is written (``edit_body.ENCODINGS``;
    text when absent). EditError names the field that is wrong.
    """
    deadletters = kind_named(kind).deadletters
    target = deadletters.target_from(post) if deadletters is not None else None
    edit = None
    body, headers = post.get("body"), post.get("headers")
    if post.get("edit") and (body is not None or headers is not None):
        parsed = edit_body.parse_headers(headers)
        encoding = str(post.get("body_encoding") or edit_body.TEXT)
        data = None if body is None else edit_body.body_bytes(str(body), encoding)
        edit = Edit(body=data, headers=parsed)
    return target, edit


def _edit_error(exc: Exception) -> edit_body.EditError | None:
    """The edit's field error behind ``exc``, if it is one (else None)."""
    if isinstance(exc, edit_body.EditError):
        return exc
    if isinstance(exc, validate.InvalidValue):
        # "headers[0].key", "headers.h.inner[1]", "body": the edit box the field is in.
        box = re.split(r"[.\[ ]", exc.field, maxsplit=1)[0]
        if box in ("body", "headers"):
            return edit_body.EditError(box, exc.message)
    return None


async def _edit_again(
    request: HttpRequest, letter_id: int, error: edit_body.EditError
) -> HttpResponse:
    """The letter's page again, its edit form open with the user's edits and the error."""
    context = await _detail_context(request, letter_id)
    context.update(
        edit_open=True,
        edit_error=error,
        edit_body=request.POST.get("body", ""),
        edit_headers=request.POST.get("headers", ""),
    )
    encoding = request.POST.get("body_encoding", "")
    if encoding in edit_body.ENCODINGS:
        context["edit_encoding"] = encoding
    response = await _render(request, "deadletters/detail.html", context)
    response.status_code = 400
    return response


@require_POST
@once.writes_once("deadletters.requeue-one")
async def requeue(request: HttpRequest, letter_id: int) -> HttpResponse:
    kind = await sync_to_async(
        DeadLetter.objects.filter(pk=letter_id).values_list("cluster__kind", flat=True).first
    )()
    if kind is None:
        raise Http404(f"no dead letter #{letter_id}")
    try:
        target, edit = requeue_form(request.POST, kind)
        result = await actions.do_requeue_dead_letter(
            letter_id, user=await request.auser(), request=request, target=target, edit=edit
        )
    except (InvalidInput, validate.InvalidValue) as exc:
        field_error = _edit_error(exc) if request.POST.get("edit") else None
        if field_error is not None:
            return await _edit_again(request, letter_id, field_error)
        messages.error(request, exc.message)
    else:
        if result.sent:
            messages.success(request, f"Dead letter #{letter_id} {result.message}.")
        else:
            messages.error(request, f"Dead letter #{letter_id} was not requeued: {result.message}")
    return redirect("deadletters-detail", letter_id=letter_id)


@require_POST
@once.writes_once("deadletters.retry-task")
async def retry_task(request: HttpRequest, letter_id: int) -> HttpResponse:
    """Requeue a Celery task letter to its queue, with the same task id or a new one."""
    choice = request.POST.get("task_id", "same")
    try:
        if choice not in ("same", "new"):
            raise InvalidInput("task_id: same or new")
        result, task_id = await celery_tasks.do_retry_task(
            letter_id, new_id=choice == "new", user=await request.auser(), request=request
        )
    except DeadLetter.DoesNotExist:
        raise Http404(f"no dead letter #{letter_id}") from None
    except (InvalidInput, validate.InvalidValue) as exc:
        messages.error(request, str(exc))
    else:
        if result.sent:
            messages.success(request, f"Task {task_id} {result.message}.")
        else:
            messages.error(request, f"Task {task_id} was not requeued: {result.message}")
    return redirect("deadletters-detail", letter_id=letter_id)


@require_POST
@once.writes_once("deadletters.release-stuck")
async def release_stuck(request: HttpRequest, letter_id: int) -> HttpResponseRedirect:
    try:
        await stuck.do_release_stuck_requeue(letter_id, user=await request.auser(), request=request)
    except DeadLetter.DoesNotExist:
        raise Http404(f"no dead letter #{letter_id}") from None
    except InvalidInput as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Dead letter #{letter_id} is pending again.")
    return redirect("deadletters-detail", letter_id=letter_id)


def _ids(request: HttpRequest) -> list[int]:
    # ASCII digits that fit a database id ("²".isdigit() is true, int("²") fails).
    return [int(v) for v in request.POST.getlist("ids") if _ID.fullmatch(v)]


def _number(request: HttpRequest, name: str) -> int | None:
    """A count or id the confirmation form carried (absent: None)."""
    value = request.POST.get(name, "")
    if not value:
        return None
    if not _ID.fullmatch(value):
        raise InvalidInput(f"{name} must be a whole number")
    return int(value)


def _back(request: HttpRequest) -> HttpResponseRedirect:
    query = request.POST.get("query", "")
    return HttpResponseRedirect(reverse("deadletters-inbox") + (f"?{query}" if query else ""))


@require_POST
@once.writes_once("deadletters.discard")
async def discard(request: HttpRequest) -> HttpResponseRedirect:
    ids = _ids(request)
    if not ids:
        messages.error(request, "select the dead letters to discard")
        return _back(request)
    done = await discards.do_discard_dead_letters(ids, user=await request.auser(), request=request)
    messages.success(request, f"Discarded {done} dead letter{'s' if done != 1 else ''}.")
    return _back(request)


@require_POST
@once.writes_once("deadletters.discard-all")
async def discard_all(request: HttpRequest) -> HttpResponseRedirect:
    try:
        spec = reads.InboxFilter.from_params(request.POST)
    except InvalidInput as exc:
        messages.error(request, str(exc))
        return _back(request)
    done = await discards.do_discard_matching(spec, user=await request.auser(), request=request)
    messages.success(request, f"Discarded {done} dead letter{'s' if done != 1 else ''}.")
    return _back(request)


@require_POST
@once.writes_once("deadletters.purge")
async def purge(request: HttpRequest) -> HttpResponseRedirect:
    """Admin: the selected letters, or (``all``) every letter the filter matches, deleted now."""
    ids: list[int] | None = None
    spec = None
    try:
        if request.POST.get("all"):
            spec = reads.InboxFilter.from_params(request.POST)
        else:
            ids = _ids(request)
            if not ids:
                raise InvalidInput("select the dead letters to purge")
    except InvalidInput as exc:
        messages.error(request, str(exc))
        return _back(request)
    done = await discards.do_purge_dead_letters(
        user=await request.auser(), ids=ids, spec=spec, request=request
    )
    messages.success(request, f"Purged {done} dead letter{'s' if done != 1 else ''}.")
    return _back(request)


@require_POST
async def requeue_bulk(request: HttpRequest) -> HttpResponseRedirect:
    """Selected ids, or everything the filter (a group is a filter) matches: the dry run
    first (frozen now), shown on its page, where the requeue is confirmed (303)."""
    user = await request.auser()
    await require_role(
        user, OPERATOR, action=preview.ACTION, slug="", target="deadletters", request=request
    )
    try:
        ids = _ids(request) if request.POST.get("scope") == "selected" else None
        if ids is not None and not ids:
            raise InvalidInput("select the dead letters to requeue")
        spec = None if ids is not None else reads.InboxFilter.from_params(request.POST)
        token, _ = await preview.do_dry_run(
            user=user,
            ids=ids,
            spec=spec,
            upto=_number(request, "upto"),
            request=request,
        )
    except InvalidInput as exc:
        messages.error(request, str(exc))
        return _back(request)
    return HttpResponseRedirect(reverse("deadletters-preview", args=[token]), status=303)
