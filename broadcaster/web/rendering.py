"""The service's HTML pages: Jinja2 templates from broadcaster/web/templates, every value escaped (autoescape
on; nothing is ever marked safe that came from a user), each page self-contained: its CSS is inline and it
loads nothing from anywhere else (the CSP in broadcaster.web.errors forbids it)."""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from aiohttp import web


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("broadcaster.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, *, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> web.Response:
    html = page_html(name, **context)
    return web.Response(text=html, content_type="text/html", charset="utf-8", status=status, headers=headers)


def page_html(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)
