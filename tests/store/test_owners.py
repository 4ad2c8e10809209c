"""Lease owners: a process of this machine and pid namespace is checked by its pid; one that only shares the
host name (another container with host networking) never is, since its pids are not ours."""

from __future__ import annotations

import os
import subprocess
import sys

from broadcaster.store.owners import local_pid, new_owner, owner_is_dead


def a_dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_dead_process_of_this_machine_is_dead_and_this_one_never() -> None:
    host, pid, nonce = new_owner().split(":")
    assert int(pid) == os.getpid()
    assert local_pid(f"{host}:{pid}:{nonce}") is None  # this process
    dead = a_dead_pid()
    assert owner_is_dead(f"{host}:{dead}:abcdef")


def test_an_owner_sharing_only_the_host_name_is_never_presumed_dead() -> None:
    host = new_owner().split(":")[0]
    name, _, machine = host.partition("~")
    assert machine  # the host part carries the machine and namespace digest
    dead = a_dead_pid()
    for elsewhere in (f"{name}~{'0' * 8}", name, "another-host~12345678"):
        owner = f"{elsewhere}:{dead}:abcdef"
        assert local_pid(owner) is None
        assert not owner_is_dead(owner)
