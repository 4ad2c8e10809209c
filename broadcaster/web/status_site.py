"""`GET /status/...`: the status mirror served by the service itself, for a single-box setup with no web
server in front. It serves the first of [mirror] directories: index.html for a directory, files as they
are, no directory listing, nothing outside that directory (no `..`, no symbolic link leading out) and no
hidden file (the mirror's temporary files, while it writes, are hidden ones)."""

from __future__ import annotations

import asyncio
from pathlib import Path, PurePosixPath
from typing import Final

from aiohttp import web

from broadcaster.web.keys import RUNTIME

PREFIX: Final = "/status"
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".atom": "application/atom+xml; charset=utf-8",
}
"""The mirror's files; anything else is left to aiohttp's guess from the extension."""

SITE_ROOT: Final = web.AppKey("status_site_root", Path)


def install(app: web.Application) -> None:
    """The mirror's routes, when [mirror] names a directory."""
    directories = app[RUNTIME].settings.mirror.directories
    if not directories:
        return
    app[SITE_ROOT] = directories[0].resolve()
    app.router.add_get(PREFIX, _to_the_index)
    app.router.add_get(PREFIX + "/{path:.*}", serve_file)


async def _to_the_index(_request: web.Request) -> web.Response:
    # Pages link to each other relatively, so the index must be read from /status/, not /status.
    raise web.HTTPPermanentRedirect(PREFIX + "/")


async def serve_file(request: web.Request) -> web.StreamResponse:
    found = await asyncio.to_thread(_locate, request.app[SITE_ROOT], request.match_info["path"])
    if found is None:
        raise web.HTTPNotFound(text="Not found. The status site is at /status/.")
    path, directory = found
    if directory and not request.path.endswith("/"):
        raise web.HTTPPermanentRedirect(request.url.raw_path + "/")  # for its relative links, as for /status
    headers = {"Cache-Control": "no-cache"}  # revalidate each time: the status changes at any moment
    if content_type := CONTENT_TYPES.get(path.suffix):
        headers["Content-Type"] = content_type
    return web.FileResponse(path, headers=headers)


def _locate(root: Path, asked: str) -> tuple[Path, bool] | None:
    """The file `asked` names under `root` and whether `asked` named a directory (whose index.html it is),
    or None when there is no such file or the path would leave `root`. Run on a thread: resolving touches
    the file system, which on a network mount can stall."""
    wanted = PurePosixPath(asked)
    # A leading dot covers "..", and the hidden files; a backslash or NUL is no name the mirror writes.
    if wanted.is_absolute() or any(part.startswith(".") or "\\" in part or "\0" in part for part in wanted.parts):
        return None
    candidate = root.joinpath(*wanted.parts).resolve()
    if not candidate.is_relative_to(root):  # a symbolic link leading out of the site
        return None
    directory = candidate.is_dir()
    if directory:
        candidate = candidate / "index.html"
    return (candidate, directory) if candidate.is_file() else None
