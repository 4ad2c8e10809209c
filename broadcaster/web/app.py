"""The application factory: every route of the service, testable in-process with aiohttp's test client."""

from __future__ import annotations

from aiohttp import web

from broadcaster.dispatch import Dispatcher
from broadcaster.runtime import Runtime
from broadcaster.web import (
    api,
    chatops,
    health,
    maintenance_watch,
    metrics,
    openapi,
    pages,
    preflight_watch,
    status_site,
    subscriptions,
    unsubscribe,
)
from broadcaster.web.auth.gate import Gate
from broadcaster.web.backlog import JournalFigures
from broadcaster.web.errors import MAX_BODY, answer_errors, security_headers
from broadcaster.web.journal_writes import JournalWrites
from broadcaster.web.keys import DISPATCHER, GATE, JOURNAL_FIGURES, JOURNAL_WRITES, RUNTIME
from config.keys import stored_secret


def create_app(
    runtime: Runtime,
    dispatcher: Dispatcher,
    *,
    preflight_every: float | None = None,
    maintenance_every: float | None = None,
) -> web.Application:
    """The service's application over an open runtime and a started dispatcher (whose lanes it reports);
    with `preflight_every`, it runs the preflight that often (seconds) while it runs, and with
    `maintenance_every`, it moves scheduled maintenance on as its windows open and close."""
    settings = runtime.settings
    configured = settings.auth.session_secret
    key = configured.get_secret_value().encode() if configured else stored_secret(settings.service.data_dir, "session")
    app = web.Application(client_max_size=MAX_BODY, middlewares=[security_headers, answer_errors, api.require_token])
    app[RUNTIME] = runtime
    app[DISPATCHER] = dispatcher

    def now() -> float:  # the runtime's clock as it is at each call (tests move it)
        return runtime.clock()

    app[GATE] = Gate(settings, key, runtime.store, clock=now)
    app[JOURNAL_FIGURES] = JournalFigures(runtime.store, now)
    app[JOURNAL_WRITES] = JournalWrites()
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    metrics.install(app)
    preflight_watch.install(app, every=preflight_every)
    maintenance_watch.install(app, every=maintenance_every)
    unsubscribe.install(app)
    subscriptions.install(app)
    status_site.install(app)
    pages.install(app)
    chatops.install(app)
    app.router.add_get(f"{api.PREFIX}/openapi.json", openapi.serve_document)
    app.router.add_routes(api.routes())
    return app
