"""`broadcaster` / `python -m broadcaster`: the fallback CLI that works with no server, no Redis and no
network beyond the channels themselves.

Exit codes: 0 done; 1 unexpected failure; 2 bad input or configuration (nothing journaled; a journal that
cannot be opened where the configuration puts it is configuration too); 3 something is pending or failed (it
stays in the journal); 4 the journal could not be written or reached (disk full, I/O error, Redis out of
reach): nothing was acknowledged (`check` reports a journal out of reach as a failed check: 3). Ctrl-C exits 3
once anything was journaled (what is left stays there, and the command says how to resume it; a second Ctrl-C
changes nothing), 130 before. A reader that stops reading (`| head`) changes none of these: the rest of the
output is dropped (see streams.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from broadcaster.cli.secrecy import scrub_output, scrubbed_handler
from broadcaster.cli.streams import tolerate_closed_pipes
from broadcaster.domain.errors import InputError, JournalWriteError, StoreError, StoreUnreachable
from broadcaster.domain.text import printable
from config import ConfigError, Settings, load_settings, resolve_config_path

if TYPE_CHECKING:
    from broadcaster.runtime import Runtime

EXIT_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_DELIVERED = 3
EXIT_JOURNAL_NOT_WRITTEN = 4
EXIT_INTERRUPTED = 130
WHILE_UNREACHABLE = (
    "until it answers, post through a running `broadcaster serve` (it goes on from its local replica) or from "
    "the fallback kit (cd KIT && venv/bin/broadcaster send ...)"
)
"""What a commander can do while the journal's server (Redis) is out of reach."""
SERVE_WHILE_UNREACHABLE = (
    "start it again once Redis answers, or with [store] replica = true (the default) to start on its local replica"
)

log = logging.getLogger("broadcaster")


def main(argv: Sequence[str] | None = None) -> int:
    from broadcaster.cli.parser import build_parser

    tolerate_closed_pipes()
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, handlers=[scrubbed_handler(sys.stderr)]
    )
    try:
        path = resolve_config_path(args.config)
        settings = load_settings(path)
        scrub_output.use(settings.scrubber)
        if args.command in ("config", "user", "kit"):
            return _without_runtime(args, settings, str(path or "defaults"))
        return asyncio.run(_run(args, settings))
    except (ConfigError, InputError, StoreError) as exc:
        return _fail(*explain(exc, command=args.command))
    except KeyboardInterrupt:
        return _interrupted(args.command)
    except Exception as exc:  # a bug: its traceback goes through the scrubbing log handler, never raw
        log.exception("unexpected error")
        return _fail(f"unexpected error ({type(exc).__name__}); the traceback is above", EXIT_ERROR)


def _interrupted(command: str) -> int:
    """Ctrl-C before anything was journaled (after, send and retry handle it themselves and exit 3): 130, but a
    drill cut short exits as one that did not deliver everywhere (3)."""
    if command == "drill":
        return _fail("interrupted; the drill was not delivered everywhere", EXIT_NOT_DELIVERED)
    return _fail("interrupted; anything not delivered stays in the journal", EXIT_INTERRUPTED)


def _without_runtime(args: argparse.Namespace, settings: Settings, source: str) -> int:
    """The commands that open no journal and no channel."""
    if args.command == "config":
        from broadcaster.cli.admin import show_config

        return show_config(settings, source)
    if args.command == "user":
        from broadcaster.cli.users import add_user

        return add_user(args)
    from broadcaster.cli.kit import kit  # the service's channels and Redis are not the kit's business

    return kit(args, settings)


def explain(exc: ConfigError | InputError | StoreError, *, command: str = "send") -> tuple[str, int]:
    """The message and exit code for an error meant for people. Messages may quote what came from outside
    (a name in a file, an SMTP reply): printable() keeps escape sequences in them from the terminal."""
    if isinstance(exc, InputError):
        from broadcaster.cli.drafts import in_flag_words

        exc = in_flag_words(exc)  # the domain names the API's fields; the user typed flags
    text = printable(str(exc))
    if isinstance(exc, ConfigError):
        return f"configuration error: {text}", EXIT_BAD_INPUT
    if isinstance(exc, StoreUnreachable):  # before JournalWriteError: no disk to free, a server to wait for
        advice = SERVE_WHILE_UNREACHABLE if command == "serve" else WHILE_UNREACHABLE
        return f"{text}; {advice}", EXIT_JOURNAL_NOT_WRITTEN
    if isinstance(exc, JournalWriteError):
        return (
            f"the journal could not be written, so nothing was acknowledged ({text}); "
            "free disk space or fix the disk, then run the command again",
            EXIT_JOURNAL_NOT_WRITTEN,
        )
    return text, EXIT_BAD_INPUT


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from broadcaster.runtime import open_runtime

    if args.command == "drill":  # on a journal of its own: the real one is never opened
        from broadcaster.cli.drill import drill

        return await drill(args, settings)
    command = _command(args)
    try:
        runtime = await open_runtime(settings, serving=args.command == "serve")
    except StoreUnreachable as exc:
        if args.command == "check":  # a check that failed, as any other: exit 3
            from broadcaster.cli.admin import report_preflight
            from broadcaster.preflight import journal_unreachable

            return report_preflight(args, journal_unreachable(settings, exc, at=time.time()))
        if args.command == "status":  # the journal is out of reach: say what this host's services do meanwhile
            from broadcaster.cli.standing import degraded_lines

            for line in degraded_lines(settings.service.data_dir):
                print(f"broadcaster: {line}", file=sys.stderr)
        raise
    try:
        return await command(args, runtime)
    finally:
        await runtime.close()


def _command(args: argparse.Namespace) -> Callable[[argparse.Namespace, object], Awaitable[int]]:
    from broadcaster.cli import admin, deliver, subscribers

    commands: dict[str, Callable[..., Awaitable[int]]] = {
        "send": deliver.send,
        "retry": deliver.retry,
        "status": admin.status,
        "render": admin.render,
        "check": admin.check,
        "serve": _serve,
        "pause": lambda a, r: admin.pause(a, r, paused=True),
        "resume": lambda a, r: admin.pause(a, r, paused=False),
        "subscribers": subscribers.run,
    }
    return commands[args.command]


async def _serve(args: argparse.Namespace, runtime: Runtime) -> int:
    from broadcaster.service import serve

    service = runtime.settings.service
    host = args.host if args.host is not None else service.host
    return await serve(runtime, host=host, port=args.port if args.port is not None else service.port)


def _fail(message: str, code: int) -> int:
    print(f"broadcaster: {scrub_output(message)}", file=sys.stderr)
    return code
