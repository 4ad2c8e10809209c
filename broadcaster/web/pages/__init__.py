"""The commander's pages: signing in, the form at `/`, the live ledger at `/updates/{id}`, and their scripts."""

from __future__ import annotations

from aiohttp import web

from broadcaster.web.pages import form, ledger, ledger_events, login, scripts


def install(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.get("/login", login.login_page),
            web.post("/login", login.log_in),
            web.post("/logout", login.log_out),
            web.get("/login/link", login.login_link),
            web.get("/", form.show_form),
            web.post("/", form.post_form),
            web.get("/updates/{update_id}", ledger.show_ledger),
            web.get("/updates/{update_id}/events", ledger_events.stream_events),
            web.post("/updates/{update_id}/retry", ledger.retry_failed),
            web.post("/updates/{update_id}/pause", ledger.pause),
            web.post("/updates/{update_id}/resume", ledger.resume),
            web.get("/static/{name}", scripts.serve_script),
        ]
    )
    ledger_events.install(app)
