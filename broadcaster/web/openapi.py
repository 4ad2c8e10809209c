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
    errors = {str(status): _answer(why, "Problem") for status, why in _ERRORS.items()}
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
                            "description": "The same key with the same body answers the first update again "
                            "(Idempotent-Replayed: true); with another body, 409.",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": REF.format(model="UpdateRequest")}}},
                    },
                    "responses": {"202": _answer("Journaled; deliveries planned", "UpdateAccepted"), **errors},
                }
            },
            "/updates/{update_id}": {
                "get": _get("An update and its ledger: every delivery and attempt", "UpdateView", "update_id"),
            },
            "/incidents": {
                "get": {"summary": "Recent incidents", "responses": {"200": _answer("Incidents", "IncidentList")}},
            },
            "/incidents/{incident_id}": {"get": _get("An incident and its updates", "IncidentView", "incident_id")},
            "/channels/{channel}/pause": {"post": _control("Hold a channel's (or one target's) deliveries")},
            "/channels/{channel}/resume": {"post": _control("Release them")},
            "/retry": {
                "post": {
                    "summary": "Give failed deliveries fresh attempts within their time-to-live",
                    "requestBody": {"content": {"application/json": {"schema": _ref("RetryRequest")}}},
                    "responses": {"202": _answer("Requeued", "Requeued"), **errors},
                }
            },
        },
    }


_ERRORS: Final = {
    400: "The body is not a JSON object",
    401: "No or wrong API token",
    404: "No such incident, update or channel",
    409: "The Idempotency-Key was used for another body",
    413: "The body is too large",
    422: "The update is not acceptable; `fields` says which field and why",
}


def _answer(description: str, model: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}}}


def _get(summary: str, model: str, parameter: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": [{"name": parameter, "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": _answer(summary, model), "404": _answer(_ERRORS[404], "Problem")},
    }


def _ref(model: str) -> dict[str, str]:
    return {"$ref": REF.format(model=model)}


def _control(summary: str) -> dict[str, Any]:
    body = _ref("PauseRequest")
    return {
        "summary": summary,
        "parameters": [{"name": "channel", "in": "path", "required": True, "schema": {"type": "string"}}],
        "requestBody": {"content": {"application/json": {"schema": body}}},
        "responses": {"200": _answer("Done", "PauseView"), "404": _answer(_ERRORS[404], "Problem")},
    }
