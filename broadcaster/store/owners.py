"""Who holds a lease: a process, named `host:pid:nonce`, and whether it is known to be gone."""

from __future__ import annotations

import os
import secrets
import socket

_HOST = socket.gethostname()


def new_owner() -> str:
    """This process's name on its leases: host, pid, and a nonce in case the pid is reused."""
    return f"{_HOST}:{os.getpid()}:{secrets.token_hex(3)}"


def local_pid(owner: str) -> int | None:
    """The pid of an owner that is another process of this host; None for one elsewhere, or this one."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return None
    return int(pid_text)


def owner_is_dead(owner: str) -> bool:
    """True only when the owner is a process of this host that no longer exists. Owners on other hosts
    are never presumed dead: their leases are recovered when they run out."""
    pid = local_pid(owner)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, owned by someone else
        return False
    return False
