"""Debian's openssh-server for the tests: one per test session on a free loopback port, with its own
configuration, a temporary host key and the test's authorized key; stopped by its PID."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.publish.servers import wait_for_port
from tests.support.helpers import stop_process
from tests.support.redis import free_port


class SshServer:
    """`sftp_flags`: options of its internal-sftp, e.g. "-P posix-rename@openssh.com" to refuse that request
    as servers without the OpenSSH extensions do."""

    def __init__(self, sftp_flags: str = "") -> None:
        self.sftp_flags = sftp_flags
        self.directory = Path(tempfile.mkdtemp(prefix="broadcaster-sshd-"))
        self.port = 0
        self.client_key = self.directory / "client_key"
        self.known_hosts = self.directory / "known_hosts"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> SshServer:
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not Path(sshd).exists():
            raise RuntimeError("sshd is not installed: `make test` installs openssh-server (bash .ci/system-deps)")
        privilege_separation = Path("/run/sshd")
        if not privilege_separation.is_dir():  # made by the package's service; a container may lack it
            privilege_separation.mkdir(parents=True)
        host_key = self.directory / "host_key"
        for key in (host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
        shutil.copy(self.client_key.with_suffix(".pub"), self.directory / "authorized_keys")
        for _ in range(5):
            self.port = free_port()
            config = self.directory / "sshd_config"
            config.write_text(
                f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
                f"AuthorizedKeysFile {self.directory / 'authorized_keys'}\nStrictModes no\n"
                f"PidFile {self.directory / 'sshd.pid'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                f"PermitRootLogin prohibit-password\nUsePAM no\nSubsystem sftp internal-sftp {self.sftp_flags}\n"
            )
            self._process = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if wait_for_port(self.port, self._process):
                public = host_key.with_suffix(".pub").read_text().split()
                self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n")
                return self
            stop_process(self._process)
        raise RuntimeError("sshd did not start")

    def close(self) -> None:
        stop_process(self._process)
        self._process = None
        shutil.rmtree(self.directory, ignore_errors=True)
