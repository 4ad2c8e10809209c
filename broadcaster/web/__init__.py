"""The HTTP side of `broadcaster serve`: an aiohttp application built by `create_app`, which the commander
form, the JSON API and chatops grow into."""

from broadcaster.web.app import create_app

__all__ = ["create_app"]
