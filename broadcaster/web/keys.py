"""Typed keys for what the application holds (aiohttp's AppKey: no string keys, no casts in handlers)."""

from __future__ import annotations

from aiohttp import web

from broadcaster.dispatch import Dispatcher
from broadcaster.runtime import Runtime
from broadcaster.web.auth.gate import Gate
from broadcaster.web.backlog import JournalFigures
from broadcaster.web.journal_writes import JournalWrites

RUNTIME = web.AppKey("runtime", Runtime)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
GATE = web.AppKey("gate", Gate)
JOURNAL_FIGURES = web.AppKey("journal_figures", JournalFigures)
JOURNAL_WRITES = web.AppKey("journal_writes", JournalWrites)
CALLER = web.RequestKey("caller", str)
"""Who is calling: the API token's name, or the signed-in user."""
