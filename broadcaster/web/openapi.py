"""The OpenAPI 3.1 description of the JSON API, generated from the very models that validate its requests
(UpdateDraft) and build its answers (broadcaster.web.views). Served at /api/v1/openapi.json."""

from __future__ import annotations

import functools
from typing import Any, Final

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from broadcaster import __version__
from broadcaster.domain.models import UpdateDraft
from broadcaster.web.snapshot import MEDIA_TYPE
from broadcaster.web.views import (
    IncidentList,
    IncidentView,
    PauseRequest,
    PauseView,
    Problem,
    Requeued,
    RetryRequest,
    UpdateAccepted,
    UpdateView,
)

REF: Final = "#/components/schemas/{model}"
MODELS: Final[tuple[type[BaseModel], ...]] = (
    UpdateAccepted,
    UpdateView,
    IncidentList,
    IncidentView,
    PauseView,
    Requeued,
    Problem,
)
REQUESTS: Final[tuple[type[BaseModel], ...]] = (PauseRequest, RetryRequest)


async def serve_document(_request: web.Request) -> web.Response:
    return web.json_response(document())


@functools.cache
def document() -> dict[str, Any]:
    _, definitions = models_json_schema(
        [(model, "serialization") for model in MODELS] + [(model, "validation") for model in REQUESTS], ref_template=REF
    )
    schemas: dict[str, Any] = definitions.get("$defs", {})
    request = UpdateDraft.model_json_schema(ref_template=REF)
    schemas.update(request.pop("$defs", {}))
    request["properties"].pop("author")  # the service records who posted
    request["description"] = (
        'An update: "title" opens an incident, "incident_id" adds to one (exactly one of them). The same fields '
        "as `broadcaster send`'s flags."
    )
    schemas["UpdateRequest"] = request
    return {
        "openapi": "3.1.0",
        "info": {"title": "broadcaster", "version": __version__},
        "servers": [{"url": "/api/v1"}],
        "security": [{"token": []}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer", "description": "[auth] api_tokens"}},
        },
        "paths": {
            "/updates": {
                "post": {
                    "summary": "Post an update; answered once it is journaled",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "maxLength": 200},
                            "description": "The same key from the same token with the same body answers the first "
                            "update again (Idempotent-Replayed: true); with another body, 409.",
                        }
                    ],
                    "requestBody": {"required": True, "content": _json(_ref("UpdateRequest"))},
                    "responses": _responses(202, "Journaled; deliveries planned", "UpdateAccepted", *_WRITES, 409),
                }
            },
            "/updates/{update_id}": {
                "get": _get("An update and its ledger: every delivery and attempt", "UpdateView", "update_id"),
            },
            "/incidents": {
                "get": {"summary": "Recent incidents", "responses": _responses(200, "Incidents", "IncidentList")},
            },
            "/incidents/{incident_id}": {"get": _get("An incident and its updates", "IncidentView", "incident_id")},
            "/channels/{channel}/pause": {"post": _control("Hold a channel's (or one target's) deliveries")},
            "/channels/{channel}/resume": {"post": _control("Release them")},
            "/retry": {
                "post": {
                    "summary": "Give failed deliveries fresh attempts within their time-to-live",
                    "requestBody": {"content": _json(_ref("RetryRequest"))},
                    "responses": _responses(202, "Requeued", "Requeued", *_WRITES),
                }
            },
            "/snapshot": {"get": _snapshot()},
        },
    }


_ERRORS: Final = {
    400: "The body is not a JSON object",
    401: "No or wrong API token",
    404: "No such incident, update, channel or target",
    409: "The Idempotency-Key was used for another body",
    403: "This token may not do this ([auth] snapshot_tokens names those that may download the journal)",
    413: "The body is too large",
    422: "The request is not acceptable; `fields` says which field and why",
    503: "The journal is unavailable or could not be written, or no answer came in time; `error` says whether "
    "anything was done (repeat an update with the same Idempotency-Key)",
}
_ALWAYS: Final = (401, 503)
"""What any call may be answered: a token refused, or a journal that cannot answer."""
_WRITES: Final = (400, 404, 413, 422)
"""What a call with a body may be answered besides."""


def _responses(status: int, description: str, model: str, *errors: int) -> dict[str, Any]:
    """The success answer and the refusals, each in the contract's shape."""
    refusals = {str(code): _answer(_ERRORS[code], "Problem") for code in sorted({*_ALWAYS, *errors})}
    return {str(status): _answer(description, model), **refusals}


def _answer(description: str, model: str) -> dict[str, Any]:
    return {"description": description, "content": _json(_ref(model))}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _get(summary: str, model: str, parameter: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": [{"name": parameter, "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": _responses(200, summary, model, 404),
    }


def _ref(model: str) -> dict[str, str]:
    return {"$ref": REF.format(model=model)}


def _control(summary: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": [{"name": "channel", "in": "path", "required": True, "schema": {"type": "string"}}],
        "requestBody": {"content": _json(_ref("PauseRequest"))},
        "responses": _responses(200, "Done", "PauseView", *_WRITES),
    }


def _snapshot() -> dict[str, Any]:
    binary = {MEDIA_TYPE: {"schema": {"type": "string", "contentMediaType": MEDIA_TYPE}}}
    refusals = {str(code): _answer(_ERRORS[code], "Problem") for code in sorted({*_ALWAYS, 403})}
    return {
        "summary": "A consistent copy of the journal as a SQLite file, for `broadcaster kit --from URL`",
        "description": "Streamed; 503 when the journal cannot be copied (a Redis journal cannot, yet).",
        "responses": {"200": {"description": "The journal (application/vnd.sqlite3)", "content": binary}, **refusals},
    }
