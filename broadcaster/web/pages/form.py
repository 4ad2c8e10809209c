"""The commander's form at `/`: post an update to an open incident or open a new one, preview what each
channel will send, start the message from a template. Server-rendered and complete without JavaScript
(form.js only fills the message from a template and counts its characters); every post carries the
session's CSRF token, and an update goes through the same validation as the API's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from broadcaster.domain.drafts import SAME_UPDATE_WITHIN, validate_draft
from broadcaster.domain.errors import ConflictError, InputError
from broadcaster.domain.models import MAX_MESSAGE, MAX_TITLE, Incident, UpdateDraft
from broadcaster.domain.vocabulary import MAINTENANCE_STATUSES, ComponentState, Impact, Status
from broadcaster.web.api import digest
from broadcaster.web.auth.gate import Session
from broadcaster.web.keys import DISPATCHER, GATE, RUNTIME
from broadcaster.web.pages.access import csrf_refused, posted_form, see_other, signed_in
from broadcaster.web.pages.form_input import (
    FIELD_LABELS,
    NEW_INCIDENT,
    NEXT_UPDATE_AT,
    NEXT_UPDATE_CHOICES,
    FormInput,
)
from broadcaster.web.pages.ledger import POSTED_BEFORE
from broadcaster.web.pages.previews import ChannelPreview, preview_draft
from broadcaster.web.pages.times import when
from broadcaster.web.rendering import render
from broadcaster.web.views import is_overdue

OPEN_INCIDENTS_LISTED: Final = 50
FORM_FIELDS: Final = ("incident", "title", "status", "impact", "components", "message", "next_update", "channels")
"""The form's fields in page order: problems are shown beside these, and in the summary in this order."""
STATUS_GROUPS: Final = (
    ("Incident", [status for status in Status if status not in MAINTENANCE_STATUSES]),
    ("Maintenance", list(MAINTENANCE_STATUSES)),
)
NEXT_UPDATE_LABELS: Final = {
    "": "No promise",
    **{choice: label for choice, (_ahead, label) in NEXT_UPDATE_CHOICES.items()},
    NEXT_UPDATE_AT: "At the time below (UTC)",
}

NEXT_UPDATE_MINUTES: Final = {
    choice: int(ahead.total_seconds() // 60) for choice, (ahead, _) in NEXT_UPDATE_CHOICES.items()
}
"""For the page's script, which fills a template's {next_update} as the server would."""


async def show_form(request: web.Request) -> web.StreamResponse:
    session = await signed_in(request)
    runtime = request.app[RUNTIME]
    incidents = await runtime.store.incidents(open_only=True, limit=OPEN_INCIDENTS_LISTED)
    picked = next((incident for incident in incidents if incident.id == request.query.get("incident")), None)
    typed = FormInput(channels=runtime.active_channels())
    if picked is not None:  # from a link "post an update to this incident": start where it stands
        typed = replace(typed, incident=picked.id, status=picked.status.value)
    return _page(request, session, typed.with_components_of(picked), incidents)


async def post_form(request: web.Request) -> web.StreamResponse:
    """One form, three buttons: "Use template" and "Preview" show the form again; "Send update" journals
    the update and goes to its ledger. A post without the session's CSRF token does none of them."""
    session = await signed_in(request)
    posted = await posted_form(request, session)
    if posted is None:
        return await csrf_refused(request)
    runtime = request.app[RUNTIME]
    scrub = runtime.settings.scrubber
    incidents = await runtime.store.incidents(open_only=True, limit=OPEN_INCIDENTS_LISTED)
    picked = next((incident for incident in incidents if incident.id == posted.get("incident")), None)
    typed = FormInput.parse(posted).with_components_of(picked)
    action = posted.get("action", "preview")
    if action == "starter":
        now = datetime.fromtimestamp(runtime.clock(), UTC)
        return _page(request, session, typed.with_starter(runtime.settings.templates, now=now), incidents)
    fields, problems = typed.draft_fields(author=session.user, now=datetime.fromtimestamp(runtime.clock(), UTC))
    unknown = [channel for channel in typed.channels if channel not in runtime.active_channels()]
    if unknown:  # the form offers only enabled channels: an old or handmade form
        problems["channels"] = f"not enabled here: {', '.join(unknown)}"
    draft = None
    try:
        draft = validate_draft(fields, FIELD_LABELS)
    except InputError as exc:
        problems = {**{name: scrub(message) for name, message in exc.fields.items()}, **problems}
    if draft is None or problems:
        return _page(request, session, typed, incidents, problems=problems, status=422)
    if action == "send":
        return await _send(request, session, typed, draft, incidents)
    try:
        previews = await preview_draft(runtime, draft)
    except InputError as exc:
        return _page(request, session, typed, incidents, problems=_problems_of(exc, scrub), status=422)
    return _page(request, session, typed, incidents, previews=previews)


async def _send(
    request: web.Request, session: Session, typed: FormInput, draft: UpdateDraft, incidents: list[Incident]
) -> web.StreamResponse:
    try:
        accepted = await request.app[DISPATCHER].submit(
            draft,
            idempotency_key=f"form:{typed.form_key}",
            request_digest=digest(typed.typed_fields()),
            same_within=SAME_UPDATE_WITHIN,
        )
    except ConflictError:
        problems = {"update": "This form was already sent with other content. Check it, then send it again."}
        return _page(request, session, typed.with_new_key(), incidents, problems=problems, status=409)
    except InputError as exc:
        scrub = request.app[RUNTIME].settings.scrubber
        return _page(request, session, typed, incidents, problems=_problems_of(exc, scrub), status=422)
    ledger = f"/updates/{accepted.update.id}"
    if accepted.duplicate:  # the ledger says so, on a stamp only this service can make
        ledger += f"?posted={request.app[GATE].stamp(POSTED_BEFORE, accepted.update.id)}"
    return see_other(ledger)


def _problems_of(exc: InputError, scrub: Callable[[str], str]) -> dict[str, str]:
    """An error from accepting (or previewing) the draft, by form field; the whole message when it names
    no field the form has. Scrubbed, as the API's errors are: a channel's error can quote a secret (a webhook
    URL with its token, say)."""
    problems = {FIELD_LABELS.get(name, name): scrub(message) for name, message in exc.fields.items()}
    if not any(name.partition(" ")[0] in FORM_FIELDS for name in problems):
        problems = {"update": scrub(str(exc))}
    return problems


def _page(
    request: web.Request,
    session: Session,
    typed: FormInput,
    incidents: list[Incident],
    *,
    problems: dict[str, str] | None = None,
    previews: list[ChannelPreview] | None = None,
    status: int = 200,
) -> web.Response:
    now = datetime.fromtimestamp(request.app[RUNTIME].clock(), UTC)
    by_field, general = _sort_problems(problems or {})
    context: dict[str, Any] = {
        "user": session.user,
        "csrf": request.app[GATE].csrf_token(session),
        "typed": typed,
        "incidents": incidents,
        "overdue": [incident for incident in incidents if is_overdue(incident, now=now)],
        "errors": by_field,
        "general_errors": general,
        "previews": previews,
        "status_groups": STATUS_GROUPS,
        "impacts": list(Impact),
        "component_states": list(ComponentState),
        "next_update_labels": NEXT_UPDATE_LABELS,
        "next_update_minutes": {
            choice: int(ahead.total_seconds() // 60) for choice, (ahead, _) in NEXT_UPDATE_CHOICES.items()
        },
        "channels": request.app[RUNTIME].active_channels(),
        "starters": _starters(request.app[RUNTIME].settings.templates),
        "max_message": MAX_MESSAGE,
        "max_title": MAX_TITLE,
        "new_incident": NEW_INCIDENT,
        "state_labels": {state.value: state.label for state in ComponentState},
        "when": when,
    }
    return render("form.html.j2", status=status, headers={"Cache-Control": "no-store"}, **context)


@dataclass(frozen=True, slots=True)
class Starter:
    name: str
    label: str
    template: str
    """With its placeholders: the page's script fills them from the form as it stands when one is chosen;
    without the script, "Use template" asks the server (FormInput.with_starter)."""


def _starters(templates: Mapping[str, str]) -> list[Starter]:
    """The configured templates, those named after a status first, in the statuses' order."""
    by_status = {status.value: status.label for status in Status}
    ordered = [name for name in by_status if name in templates] + sorted(set(templates) - set(by_status))
    return [Starter(name=name, label=by_status.get(name, name), template=templates[name]) for name in ordered]


def _sort_problems(problems: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Problems by form field (a component's carries its name), and those that belong to no one field."""
    by_field: dict[str, str] = {}
    general: list[str] = []
    for key, message in problems.items():
        name, _, detail = key.partition(" ")
        if name in FORM_FIELDS:
            text = f"{detail}: {message}" if detail else message
            by_field[name] = f"{by_field[name]}; {text}" if name in by_field else text
        else:
            general.append(message if key == "update" else f"{key}: {message}")
    return {name: by_field[name] for name in FORM_FIELDS if name in by_field}, general
