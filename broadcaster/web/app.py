"""The application factory: every route of the service, testable in-process with aiohttp's test client."""

from __future__ import annotations

from aiohttp import web

from broadcaster.dispatch import Dispatcher
from broadcaster.runtime import Runtime
from broadcaster.web import health
from broadcaster.web.keys import DISPATCHER, RUNTIME


def create_app(runtime: Runtime, dispatcher: Dispatcher) -> web.Application:
    """The service's application over an open runtime and a started dispatcher (whose lanes it reports)."""
    app = web.Application()
    app[RUNTIME] = runtime
    app[DISPATCHER] = dispatcher
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    return app
