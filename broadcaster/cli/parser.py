"""The command line: `broadcaster <command> [options]`. Every command takes --config FILE."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Final, NoReturn

from broadcaster import __version__
from broadcaster.domain.models import MAX_MESSAGE
from broadcaster.domain.vocabulary import ComponentState, Impact, Status
from config.loading import did_you_mean

DEFAULT_WAIT: Final = 60.0
MAX_WAIT: Final = 86400.0
"""A day, the longest default time-to-live (the mirror's): a longer wait is a typo, and whatever is still
pending when the wait ends stays in the journal for `broadcaster retry` anyway."""

_STATUSES = ", ".join(s.value for s in Status)
_IMPACTS = ", ".join(i.value for i in Impact)
_STATES = ", ".join(c.value for c in ComponentState)


def build_parser() -> argparse.ArgumentParser:
    common = _Command(add_help=False)
    _add_common_options(common, after_the_command=True)
    parser = argparse.ArgumentParser(
        prog="broadcaster",
        description="Post incident updates to every channel at once: email, X, webhooks and a static status mirror.",
    )
    parser.add_argument("--version", action="version", version=f"broadcaster {__version__}")
    _add_common_options(parser, after_the_command=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Command)

    send = commands.add_parser(
        "send",
        parents=[common],
        help="post an update and deliver it now, in this process",
        description="Journal one update and fan it out in-process. Exit 0: every channel delivered; "
        "2: bad input or configuration (nothing journaled); 3: something is pending or failed "
        "(it stays in the journal for `broadcaster retry` or the service); 4: the journal could not be "
        "written (disk full, I/O error, Redis out of reach): nothing was acknowledged. Ctrl-C exits 3 once "
        "anything was journaled.",
    )
    which = send.add_mutually_exclusive_group(required=True)
    which.add_argument("--title", help="open a new incident with this title")
    which.add_argument("--incident", metavar="ID", help="add an update to this incident")
    send.add_argument("--status", required=True, help=f"one of: {_STATUSES}")
    text = send.add_mutually_exclusive_group(required=True)
    text.add_argument(
        "--message", help=f'the update text, at most {MAX_MESSAGE} characters ("-" reads it from standard input)'
    )
    text.add_argument(
        "--template",
        metavar="NAME",
        help="start from [templates] NAME (one ships per status), its {components} and {next_update} filled in",
    )
    send.add_argument("--impact", help=f"one of: {_IMPACTS} (default: from the components, else minor)")
    send.add_argument(
        "--component", action="append", default=[], metavar="NAME=STATE", help=f"repeatable; STATE one of: {_STATES}"
    )
    send.add_argument("--channel", action="append", metavar="NAME", help="repeatable; default: every enabled channel")
    send.add_argument(
        "--next-update", metavar="WHEN", help="when the next update is due: 30m, 2h or ISO 8601 with zone"
    )
    send.add_argument("--scheduled-for", metavar="WHEN", help="maintenance start (ISO 8601 with zone)")
    send.add_argument("--scheduled-until", metavar="WHEN", help="maintenance end (ISO 8601 with zone)")
    send.add_argument("--reopen", action="store_true", help="allow an update to a resolved incident, reopening it")
    send.add_argument(
        "--idempotency-key", metavar="KEY", help="repeat-safe: a second send with the same key does nothing"
    )
    _wait_and_json(send)

    retry = commands.add_parser(
        "retry",
        parents=[common],
        help="deliver what is still pending (and, with --failed, what failed)",
        description="Take back deliveries left by crashed processes, then deliver everything pending in-process. "
        "Exit codes as send's: Ctrl-C exits 3, what is left staying in the journal.",
    )
    retry.add_argument("--failed", action="store_true", help="also give failed deliveries a fresh set of attempts")
    retry.add_argument("--update", metavar="ID", help="only this update's deliveries")
    retry.add_argument("--channel", action="append", metavar="NAME", help="only these channels (repeatable)")
    _wait_and_json(retry)

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run every lane continuously, with /healthz and /readyz",
        description="Deliver whatever is journaled (by the CLI, by other instances), take back the work of "
        "crashed processes, and answer health checks. Stops cleanly on SIGTERM or SIGINT.",
    )
    serve.add_argument("--host", help="listen address (default: [service] host)")
    serve.add_argument("--port", type=int, help="listen port (default: [service] port; 0 picks a free one)")

    status = commands.add_parser("status", parents=[common], help="the delivery ledger")
    status.add_argument("id", nargs="?", metavar="ID", help="an incident or update id (default: an overview)")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    commands.add_parser("render", parents=[common], help="rebuild the whole status mirror from the journal")
    check = commands.add_parser(
        "check", parents=[common], help="preflight the journal and every enabled channel without messaging anyone"
    )
    check.add_argument("--json", action="store_true", help='print {"ok", "checked_at", "results"} on standard output')
    _drill_options(
        commands.add_parser(
            "drill",
            parents=[common],
            help="send a marked test update to the [drill] targets only, and time each channel",
            description="Journal a test update (its title starts with [DRILL]) in <data_dir>/drills.db, apart from "
            "the real journal, and deliver it to the [drill] targets only: never to subscribers, the real mirror or "
            "the real X account (a drill target equal to a real one is refused, exit 2). Exit codes as send's.",
        )
    )
    config = commands.add_parser("config", parents=[common], help="show the effective settings, secrets masked")
    config.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # JSON is the only format; accepted

    user = commands.add_parser("user", parents=[common], help="make a user for the commander form")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION", parser_class=_Command)
    add = user_commands.add_parser(
        "add",
        parents=[common],
        help="print an argon2 hash of a new user's password, for [auth] users",
        description="Asks for the password twice (or reads it from standard input) and prints the line to "
        "add to [auth] users. The password itself is not stored anywhere.",
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    for verb, what in (("pause", "hold a channel's deliveries (queued, not sent)"), ("resume", "release them")):
        control = commands.add_parser(verb, parents=[common], help=what)
        control.add_argument("channel", metavar="CHANNEL")
        control.add_argument("--target", default="", help="only this target of the channel")
        control.add_argument("--reason", default="", help="recorded with the pause, shown by `status`")
    _subscribers(commands, common)
    return _with_kit(parser, commands, common)


def _with_kit(
    parser: argparse.ArgumentParser, commands: argparse._SubParsersAction[_Command], common: _Command
) -> argparse.ArgumentParser:
    """`parser` with the kit command (build_parser's statements are many enough)."""
    kit = commands.add_parser(
        "kit",
        parents=[common],
        help="write the fallback kit for a laptop outside the platform",
        description="Write into DIR (new or empty) a virtualenv with the CLI, this configuration with every secret "
        "as an environment reference, a snapshot of the journal and a one-page runbook; with --refresh, renew the "
        "snapshot and the configuration of an existing kit. Exit 2 for bad input, 1 when a step failed.",
    )
    kit.add_argument("directory", type=Path, metavar="DIR")
    kit.add_argument("--refresh", action="store_true", help="renew the snapshot and configuration of the kit in DIR")
    kit.add_argument(
        "--from", dest="from_url", metavar="URL", help="take the snapshot from the service at URL over its API"
    )
    kit.add_argument("--token-env", metavar="VAR", help="the environment variable holding the API token for --from")
    return parser


def _add_common_options(parser: argparse.ArgumentParser, *, after_the_command: bool) -> None:
    """--config and --verbose, taken before the command or after it: after it, no default (SUPPRESS), so one
    given before it stands (`broadcaster --config FILE status` is `broadcaster status --config FILE`)."""
    help_config = "TOML settings (default: $BROADCASTER_CONFIG, ./broadcaster.toml)"
    config = parser.add_argument("--config", metavar="FILE", help=help_config)
    verbose = parser.add_argument("-v", "--verbose", action="store_true", help="log what the lanes do to stderr")
    if after_the_command:
        config.default = verbose.default = argparse.SUPPRESS


class _Command(argparse.ArgumentParser):
    """A subcommand's parser: an argument it does not know is its own error, shown with its own usage (the
    top-level parser would show only `broadcaster [-h] [--version] [--config FILE] [-v] COMMAND ...`), with
    the nearest option."""

    _typed: Sequence[str] = ()

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._typed = list(args) if args is not None else []
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            first = extras[0].partition("=")[0]
            hint = did_you_mean(first, self._options()) if first.startswith("-") else ""
            self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        """argparse's refusal, naming an unknown option typed with its nearest when there is one: a typo of a
        required flag (`--titel`) is refused as a missing --title before the typo is even looked at."""
        options = self._options()
        typed = [word.partition("=")[0] for word in self._typed if word.startswith("--")]
        typo = next((option for option in typed if option not in options), None)
        if typo is not None and "unrecognized arguments" not in message:
            message += f"; unrecognized argument {typo}{did_you_mean(typo, options)}"
        super().error(message)

    def _options(self) -> list[str]:
        return [option for action in self._actions for option in action.option_strings]


def _drill_options(drill: argparse.ArgumentParser) -> None:
    drill.add_argument("--title", default="Broadcaster drill", help='default "Broadcaster drill"; [DRILL] goes first')
    drill.add_argument("--message", help="default: a sentence saying it is a test and nothing needs doing")
    drill.add_argument("--status", default="investigating", help=f"one of: {_STATUSES} (default investigating)")
    drill.add_argument("--channel", action="append", metavar="NAME", help="repeatable; default: every drill channel")
    _wait_and_json(drill)


def _wait_and_json(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--wait",
        type=wait_seconds,
        metavar="SECONDS",
        help=f"how long to keep delivering before handing over to the journal: 0 to {MAX_WAIT:g} (default: on "
        "a terminal, until every delivery is done or past its time-to-live, Ctrl-C handing the rest over and "
        f"exiting 3; otherwise {DEFAULT_WAIT:g})",
    )
    command.add_argument("--json", action="store_true", help="print the result as JSON on standard output")


def wait_seconds(text: str) -> float:
    """--wait: seconds from 0 (journal, try once, hand over) to MAX_WAIT; refused otherwise (exit 2)."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    # `not 0 <= seconds` also refuses nan, which compares false with everything.
    if not 0 <= seconds <= MAX_WAIT:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 to {MAX_WAIT:g} seconds")
    return seconds


def _subscribers(commands: argparse._SubParsersAction[_Command], common: _Command) -> None:
    subscribers = commands.add_parser(
        "subscribers",
        parents=[common],
        help="the journal's email subscribers: list, add, remove, import, export",
        description="People who subscribed themselves (the /subscribe form) and those an operator added. The "
        "[email] subscribers_file, if any, is a separate list and is not changed.",
    )
    actions = subscribers.add_subparsers(
        dest="subscribers_command", required=True, metavar="ACTION", parser_class=_Command
    )
    listing = actions.add_parser("list", parents=[common], help="every subscriber, with components and since when")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument(
        "--webhooks", action="store_true", help="the webhook endpoints instead (by host and id; the URL is a secret)"
    )
    add = actions.add_parser("add", parents=[common], help="add (or change) a subscriber, confirmed by you")
    add.add_argument("address", metavar="ADDRESS")
    add.add_argument(
        "--component", action="append", default=[], metavar="NAME", help="repeatable; default: every component"
    )
    remove = actions.add_parser(
        "remove", parents=[common], help="remove a subscriber (an address, or a webhook endpoint's id from list)"
    )
    remove.add_argument("address", metavar="ADDRESS|ID")
    load = actions.add_parser(
        "import",
        parents=[common],
        help="add everyone in FILE (one address per line, or CSV with email and components columns)",
    )
    load.add_argument("file", metavar="FILE")
    load.add_argument("--skip-bad-lines", action="store_true", help="import the good lines of a file with bad ones")
    actions.add_parser("export", parents=[common], help="print every subscriber as CSV (email,components)")
