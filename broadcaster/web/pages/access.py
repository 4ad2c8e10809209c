"""Who may see the commander's pages, and what a page's form post must carry: a session (else a redirect to
the login page, which brings the user back afterwards) and, on every post, the session's CSRF token."""

from __future__ import annotations

from typing import Final
from urllib.parse import quote, urlsplit

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from broadcaster.web.auth.gate import Session
from broadcaster.web.keys import CALLER, GATE
from broadcaster.web.rendering import render

CSRF_FIELD: Final = "csrf"
HOME: Final = "/"


async def signed_in(request: web.Request) -> Session:
    """The request's session; without one, a redirect to the login page that comes back here afterwards."""
    session = await request.app[GATE].session(request)
    if session is None:
        back = request.path_qs if request.method == "GET" else HOME
        raise web.HTTPSeeOther(location=f"/login?next={quote(back, safe='/')}")
    request[CALLER] = session.user
    return session


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site, or "/". Anything that a browser could read as
    another site (a scheme, "//host", "/\\host", which browsers treat as "//host") is refused, so a
    crafted login link cannot send a freshly signed-in user to a look-alike page."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return HOME
    if any(not char.isprintable() or char.isspace() for char in value):
        return HOME
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else HOME


def see_other(location: str) -> web.Response:
    """303: after a post, the browser fetches `location` with a GET (reloading it never posts again)."""
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


async def refused(status: int, heading: str, explanation: str, *, request: web.Request) -> web.Response:
    """An HTML page saying why a request was refused, and what to do."""
    session = await request.app[GATE].session(request)
    return render(
        "refused.html.j2",
        status=status,
        heading=heading,
        explanation=explanation,
        user=session.user if session else None,
        csrf=request.app[GATE].csrf_token(session) if session else "",
    )


async def posted_form(request: web.Request, session: Session) -> MultiDictProxy[str] | None:
    """The posted form's text fields when it carries the session's CSRF token, else None (the caller refuses
    with 403 and does nothing). Uploaded files are never expected and are dropped."""
    posted = await request.post()
    token = posted.get(CSRF_FIELD)
    if not isinstance(token, str) or not request.app[GATE].csrf_ok(session, token):
        return None
    return MultiDictProxy(MultiDict((name, value) for name, value in posted.items() if isinstance(value, str)))


async def csrf_refused(request: web.Request) -> web.Response:
    return await refused(
        403,
        "This form has expired",
        "The form was sent without its security token, or with one from another session, so nothing was "
        "done. Open the page again and resend.",
        request=request,
    )
