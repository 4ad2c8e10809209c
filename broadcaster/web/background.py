"""Work the service repeats while it runs (the preflight, moving scheduled maintenance on): started with
the application, stopped with it, and never ended by an error in one round, which is logged instead."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

from aiohttp import web

Step = Callable[[web.Application], Awaitable[None]]


def repeat(app: web.Application, step: Step, *, every: float, log: logging.Logger, what: str) -> None:
    """Run `step(app)` at once and then every `every` seconds, for as long as `app` runs."""
    app.cleanup_ctx.append(partial(_running, step=step, every=every, log=log, what=what))


async def _running(
    app: web.Application, *, step: Step, every: float, log: logging.Logger, what: str
) -> AsyncIterator[None]:
    task = asyncio.create_task(_rounds(app, step, every, log, what))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _rounds(app: web.Application, step: Step, every: float, log: logging.Logger, what: str) -> None:
    while True:
        try:
            await step(app)
        except Exception:  # a bug: logged, and tried again next round; never the end of the service
            log.exception("%s failed", what)
        await asyncio.sleep(every)
