"""The pages' scripts, served from this origin (the CSP allows no inline script and nothing from elsewhere):
form.js and ledger.js, kept beside the templates. Each page works without them."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Final

from aiohttp import web

SCRIPTS: Final = frozenset({"form.js", "ledger.js"})


async def serve_script(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in SCRIPTS:
        raise web.HTTPNotFound(text="no such script")
    return web.Response(body=_source(name), content_type="text/javascript", charset="utf-8")


@functools.cache
def _source(name: str) -> bytes:
    return (resources.files("broadcaster.web") / "templates" / name).read_bytes()
