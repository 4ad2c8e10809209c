"""`broadcaster user add NAME`: an argon2 hash of a new user's password, to put in [auth] users. The
password is asked twice on a terminal (never echoed), or read from standard input with --password-stdin;
it is never written anywhere, only its hash is printed."""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from typing import Final

from broadcaster.domain.errors import InputError
from broadcaster.web.auth.passwords import hash_password

NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
"""Also refuses the name a login link's session signs in as (gate.LINK_USER: spaces and brackets), so no user
made here can be taken for one."""
MIN_PASSWORD: Final = 10


def add_user(args: argparse.Namespace) -> int:
    name: str = args.name
    if not NAME.match(name):
        raise InputError(
            f"user name {name!r}: 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    password = _password(from_stdin=args.password_stdin)
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password must have at least {MIN_PASSWORD} characters")
    hashed = hash_password(password)
    print(f'# Add under [auth.users] in the configuration file (the hash is safe to keep there):\n{name} = "{hashed}"')
    print(f"# or in the environment:\n# BROADCASTER_AUTH__USERS='{json.dumps({name: hashed})}'", file=sys.stderr)
    return 0


def _password(*, from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        raise InputError("the two passwords differ; nothing was made")
    return first
