"""Updates the subscription tests post: one touching API, one touching Website, one naming no component."""

from __future__ import annotations

API_DOWN = {
    "title": "API errors",
    "status": "investigating",
    "message": "Some calls fail.",
    "components": {"API": "major_outage"},
}
SITE_SLOW = {
    "title": "Slow pages",
    "status": "investigating",
    "message": "Pages load slowly.",
    "components": {"Website": "degraded_performance"},
}
EVERYTHING = {"title": "Login trouble", "status": "investigating", "message": "Sign-in fails for some."}
