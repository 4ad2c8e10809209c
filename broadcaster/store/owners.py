"""Who holds a lease: a process, named `host:pid:nonce`, and whether it is known to be gone.

`host` is the host name and, after a "~", a short digest of what makes pids comparable: the kernel's boot id
and this process's pid namespace. Two containers can share a host name (host networking, replicas given one
`hostname:`) while each has pids of its own; a pid is only checked when both say it is the same machine and
namespace. Any other owner is never presumed dead: its leases come back when they run out."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from pathlib import Path


def _machine() -> str:
    """A digest of the boot id and the pid namespace: the same exactly when pids mean the same processes."""
    parts = []
    for source in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(os.readlink(source) if source.endswith("/ns/pid") else Path(source).read_text().strip())
        except OSError:
            parts.append("?")  # not Linux: the host name alone, as before
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]


_HOST = f"{socket.gethostname()}~{_machine()}"


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
