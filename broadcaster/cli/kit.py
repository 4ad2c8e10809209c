"""`broadcaster kit DIR [--refresh] [--from URL --token-env VAR]`: the fallback kit for a laptop outside the
platform (broadcaster.kit builds it). Progress goes to stderr, one line per step; exit 0 when the kit is
ready, 2 for bad input (the directory, the URL, the token), 1 when a step failed otherwise."""

from __future__ import annotations

import argparse
import os
import sys

from broadcaster.cli.secrecy import scrub_output
from broadcaster.kit.build import RUNBOOK, SECRETS_EXAMPLE, KitRequest, build
from broadcaster.kit.journal import snapshot_url
from broadcaster.kit.steps import BAD_INPUT, KitError, Progress
from config import Settings


def kit(args: argparse.Namespace, settings: Settings) -> int:
    try:
        request = _request(args)
    except KitError as exc:
        return _fail(str(exc), exc.code)
    progress = Progress(total=3 if request.refresh else 5)
    try:
        build(settings, request, progress)
    except KitError as exc:
        return _fail(f"{progress.failed_step}: {exc}" if progress.failed_step else str(exc), exc.code)
    verb = "refreshed" if request.refresh else "ready"
    print(
        f"kit {verb} in {progress.elapsed():.1f} s: {request.directory.absolute()} "
        f"(fill the variables of {SECRETS_EXAMPLE} before posting; see {RUNBOOK})",
        file=sys.stderr,
    )
    return 0


def _request(args: argparse.Namespace) -> KitRequest:
    if args.token_env and not args.from_url:
        raise KitError("--token-env goes with --from URL", code=BAD_INPUT)
    token = None
    if args.from_url:
        if not args.token_env:
            raise KitError("--from URL needs --token-env VAR, the variable holding an API token", code=BAD_INPUT)
        snapshot_url(args.from_url)  # refused now rather than after the configuration is written
        token = os.environ.get(args.token_env, "")
        if not token:
            raise KitError(
                f"--token-env {args.token_env}: that environment variable is not set or empty", code=BAD_INPUT
            )
    return KitRequest(directory=args.directory, refresh=args.refresh, from_url=args.from_url, token=token)


def _fail(message: str, code: int) -> int:
    print(f"broadcaster: kit: {scrub_output(message)}", file=sys.stderr)
    return code if code == BAD_INPUT else 1
