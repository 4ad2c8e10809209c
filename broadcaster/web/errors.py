"""Every request's safety net: a time limit, size limits, security headers, and errors answered as the
contract says (`{"error", "fields"}` with 400/401/404/409/413/422 for the API), never a traceback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from broadcaster.domain.errors import (
    ConflictError,
    InputError,
    JournalWriteError,
    NotFoundError,
    StoreError,
    StoreUnreachable,
)
from broadcaster.web.keys import JOURNAL_WRITES, RUNTIME
from broadcaster.web.views import Problem

log = logging.getLogger("broadcaster.web")

MAX_BODY: Final = 64 * 1024
"""Bytes a request body may have (an update's fields at their longest are well under it)."""
HANDLER_TIMEOUT: Final = 30.0
"""Seconds any handler may take, streams aside: a request stuck on a locked journal answers 503 rather
than hold a connection for ever."""
STREAMS: Final = ("/events",)
"""Path endings of long-lived streams (server-sent events), exempt from the handler time limit."""
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; script-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""Pages load nothing from anywhere else, and no inline script runs (user text can never become code)."""


def problem(status: int, error: str, fields: dict[str, str] | None = None) -> web.Response:
    body = Problem(error=error, fields=fields or {})
    return web.json_response(body.model_dump(mode="json"), status=status)


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith(("/api/", "/chatops/"))


@web.middleware
async def answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        if request.path.endswith(STREAMS):
            return await handler(request)
        async with asyncio.timeout(HANDLER_TIMEOUT):
            return await handler(request)
    except (InputError, StoreError, TimeoutError) as exc:
        return _refusal(request, exc)
    except web.HTTPException as exc:
        if _wants_json(request) and exc.status >= 400:
            return _http_problem(exc)
        raise
    except Exception:
        # A bug: logged (through the scrubbing handler) with its traceback, never shown to the caller.
        log.exception("%s %s failed", request.method, request.path)
        if _wants_json(request):
            return problem(500, "internal error; the service logged it")
        raise


def _refusal(request: web.Request, exc: InputError | StoreError | TimeoutError) -> web.Response:
    """What went wrong, said without a secret: 409, 404 or 422 for bad input, 503 when the journal or the
    time limit failed us (the caller may retry; nothing was accepted)."""
    scrub = request.app[RUNTIME].settings.scrubber
    if isinstance(exc, InputError):
        status = 409 if isinstance(exc, ConflictError) else 404 if isinstance(exc, NotFoundError) else 422
        return problem(status, scrub(str(exc)), exc.fields)
    if isinstance(exc, TimeoutError):
        log.error("%s %s took longer than %gs", request.method, request.path, HANDLER_TIMEOUT)
        if request.method == "GET":
            return problem(503, f"no answer within {HANDLER_TIMEOUT:g}s; try again shortly")
        # The journal's write runs on in its thread when the wait for it is given up, so it may have landed.
        return problem(
            503,
            f"no answer within {HANDLER_TIMEOUT:g}s, so this may or may not have been done; "
            "repeat it with the same Idempotency-Key (a repeated update is answered, not posted twice), "
            "or check before repeating it",
        )
    if isinstance(exc, StoreUnreachable) and not isinstance(exc, JournalWriteError):
        log.warning("journal: %s", exc)  # expected while Redis is away: /readyz and the metrics say so
    else:
        log.error("journal: %s", exc)
    if isinstance(exc, JournalWriteError):
        request.app[JOURNAL_WRITES].failed(request.app[RUNTIME].clock(), scrub(str(exc)))
        return problem(503, "the journal could not be written, so nothing was accepted; try again shortly")
    if isinstance(exc, StoreUnreachable):  # its address stays in the log: a public page may ask too
        return problem(
            503, "the shared journal (Redis) is out of reach, so this was not done; try again once it is back"
        )
    return problem(503, "the journal is unavailable; try again shortly")


def _http_problem(exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusals (413 too large, 405, 404 no route) in the API's shape, keeping their headers."""
    text = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    response = problem(exc.status, text or exc.reason)
    for name in ("Allow", "Retry-After", "WWW-Authenticate"):
        if name in exc.headers:
            response.headers[name] = exc.headers[name]
    return response


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On every answer, including aiohttp's own refusals and redirects raised as exceptions."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _secure(exc.headers)
        raise
    _secure(response.headers)
    return response


def _secure(headers: MutableMapping[str, str]) -> None:
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
