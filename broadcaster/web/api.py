"""The JSON API (`/api/v1`), for scripts: post an update, read the ledger and the incidents, pause, resume
and retry. Every call needs `Authorization: Bearer <token>` from [auth] api_tokens; the token's name is
recorded as the author of what it posts."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from broadcaster.control import requeue_failed, set_paused
from broadcaster.domain.drafts import validate_draft
from broadcaster.domain.errors import ConflictError, InputError
from broadcaster.domain.models import ID_PATTERN, UpdateDraft
from broadcaster.domain.text import printable
from broadcaster.store import Accepted
from broadcaster.web.errors import problem
from broadcaster.web.keys import CALLER, DISPATCHER, GATE, RUNTIME
from broadcaster.web.snapshot import get_snapshot
from broadcaster.web.views import (
    DeliveryBrief,
    IncidentList,
    PauseRequest,
    PauseView,
    Requeued,
    RetryRequest,
    UpdateAccepted,
    delivery_view,
    incident_summary,
    incident_view,
    update_view,
)
from config.loading import did_you_mean

M = TypeVar("M", bound=BaseModel)

PREFIX: Final = "/api/v1"
MAX_IDEMPOTENCY_KEY: Final = 200
INCIDENTS_LISTED: Final = 50
UPDATE_FIELDS: Final = frozenset(UpdateDraft.model_fields) - {"author"}
"""What a request may set: every field of an update but its author, which the service records."""


def routes() -> list[web.RouteDef]:
    return [
        web.post(f"{PREFIX}/updates", post_update),
        web.get(f"{PREFIX}/updates/{{update_id}}", get_update),
        web.get(f"{PREFIX}/incidents", list_incidents),
        web.get(f"{PREFIX}/incidents/{{incident_id}}", get_incident),
        web.post(f"{PREFIX}/channels/{{channel}}/pause", pause_channel),
        web.post(f"{PREFIX}/channels/{{channel}}/resume", resume_channel),
        web.post(f"{PREFIX}/retry", retry),
        web.get(f"{PREFIX}/snapshot", get_snapshot),
    ]


@web.middleware
async def require_token(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every /api/v1 call but the OpenAPI document carries a valid bearer token, else 401."""
    if request.path.startswith(PREFIX) and request.path != f"{PREFIX}/openapi.json":
        caller = request.app[GATE].api_caller(request)
        if caller is None:
            refused = problem(401, "missing or wrong API token (Authorization: Bearer <token> from [auth] api_tokens)")
            refused.headers["WWW-Authenticate"] = 'Bearer realm="broadcaster"'
            return refused
        request[CALLER] = caller
    answered: web.StreamResponse = await handler(request)
    return answered


def scoped_idempotency_key(caller: str, key: str) -> str:
    """The journal's key for an API caller's Idempotency-Key. Keys are each caller's own (two tokens that
    happen to pick the same key make two updates), and the pair is JSON so no name and key can run into
    another's ("a" with "b:c" is not "a:b" with "c")."""
    return "api:" + json.dumps([caller, key])


async def post_update(request: web.Request) -> web.Response:
    body = await _json_object(request)
    unknown = sorted(set(body) - UPDATE_FIELDS)
    if unknown:
        offered = sorted(UPDATE_FIELDS)
        fields = {name: f"not a field of an update{did_you_mean(name, offered)}" for name in unknown}
        if "author" in fields:
            fields["author"] = "set by the service: the API token's name"
        raise InputError(f"unknown field {printable(unknown[0])!r}{did_you_mean(unknown[0], offered)}", fields)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isprintable()):
        raise InputError(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters",
            {"Idempotency-Key": "invalid"},
        )
    draft = validate_draft({**body, "author": request[CALLER]}, {})
    scoped_key = None if key is None else scoped_idempotency_key(request[CALLER], key)
    try:
        accepted = await request.app[DISPATCHER].submit(draft, idempotency_key=scoped_key, request_digest=digest(body))
    except ConflictError:
        raise ConflictError(
            f"Idempotency-Key {key!r} was used before for an update with other content; use a new key for a new update",
            {"Idempotency-Key": "used before for other content"},
        ) from None
    return web.json_response(
        accepted_view(accepted).model_dump(mode="json"),
        status=202,
        headers={"Idempotent-Replayed": "true"} if accepted.duplicate else None,
    )


def accepted_view(accepted: Accepted) -> UpdateAccepted:
    return UpdateAccepted(
        update_id=accepted.update.id,
        incident_id=accepted.incident.id,
        deliveries=[DeliveryBrief(channel=d.channel, target=d.target, state=d.state) for d in accepted.deliveries],
    )


def digest(body: dict[str, Any]) -> str:
    """What a request said, for comparing a repeated Idempotency-Key's: the same fields with the same values
    give the same digest, however the JSON was laid out."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def get_update(request: web.Request) -> web.Response:
    store = request.app[RUNTIME].store
    update_id = _id(request, "update_id")
    update = await store.update(update_id)
    deliveries = [delivery_view(d, await store.attempts(d.id)) for d in await store.deliveries(update_id=update_id)]
    return _json(update_view(update, deliveries))


async def list_incidents(request: web.Request) -> web.Response:
    now = datetime.now(UTC)
    found = await request.app[RUNTIME].store.incidents(limit=INCIDENTS_LISTED)
    return _json(IncidentList(incidents=[incident_summary(incident, now=now) for incident in found]))


async def get_incident(request: web.Request) -> web.Response:
    history = await request.app[RUNTIME].store.history(_id(request, "incident_id"))
    return _json(incident_view(history.incident, history.updates, now=datetime.now(UTC)))


async def pause_channel(request: web.Request) -> web.Response:
    return await _set_paused(request, paused=True)


async def resume_channel(request: web.Request) -> web.Response:
    return await _set_paused(request, paused=False)


async def _set_paused(request: web.Request, *, paused: bool) -> web.Response:
    asked = _model(PauseRequest, await _json_object(request, empty_ok=True))
    channel = request.match_info["channel"]
    reason = asked.reason or f"by {request[CALLER]} through the API"
    await set_paused(request.app[RUNTIME], channel, asked.target, paused=paused, reason=reason)
    return _json(PauseView(channel=channel, target=asked.target, paused=paused))


async def retry(request: web.Request) -> web.Response:
    """Failed deliveries back in the queue with fresh attempts (within their time-to-live); the running
    lanes take them, and everything else waiting, at once."""
    asked = _model(RetryRequest, await _json_object(request, empty_ok=True))
    requeued, too_old = await requeue_failed(request.app[RUNTIME], update_id=asked.update_id, channel=asked.channel)
    request.app[DISPATCHER].wake()
    return _json(Requeued(requeued=requeued, too_old=too_old), status=202)


# --- helpers


async def _json_object(request: web.Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The request body as a JSON object: 400 when it is not JSON or not an object (413 when too large)."""
    raw = await request.read()
    if not raw.strip() and empty_ok:
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise web.HTTPBadRequest(text=f"the body is not JSON: {exc}") from None
    except RecursionError:  # thousands of nested brackets fit in MAX_BODY
        raise web.HTTPBadRequest(text="the body is not an update: JSON nested too deeply") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return body


def _model(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        fields = {".".join(str(part) for part in e["loc"]): e["msg"] for e in exc.errors(include_url=False)}
        raise InputError("; ".join(f"{name}: {message}" for name, message in fields.items()), fields) from None


def _id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not ID_PATTERN.match(value):
        raise web.HTTPNotFound(text=f"{printable(value)!r} is not an id")
    return value


def _json(view: BaseModel, *, status: int = 200) -> web.Response:
    return web.json_response(view.model_dump(mode="json"), status=status)
