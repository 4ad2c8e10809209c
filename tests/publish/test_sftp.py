"""Publishing the status site to a second host over SFTP: Debian's openssh-server on a free loopback port,
with a temporary host key pinned in known_hosts."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import WriteConfig
from tests.publish.servers import site_files
from tests.publish.sshd import SshServer
from tests.publish.test_s3 import send
from tests.support.helpers import run_cli

TARGET = "publish:host"


@pytest.fixture(scope="module")
def plain_sshd() -> Iterator[SshServer]:
    """A server without OpenSSH's posix-rename: its SFTP rename never replaces a file."""
    server = SshServer(sftp_flags="-P posix-rename").start()
    try:
        yield server
    finally:
        server.close()


def sftp_config(sshd: SshServer, path: Path, known_hosts: Path | None = None) -> str:
    return (
        '[mirror]\ndirectories = ["public"]\n\n[[mirror.publish]]\nkind = "sftp"\nname = "host"\n'
        f'host = "127.0.0.1"\nport = {sshd.port}\nusername = "{getpass.getuser()}"\nkey_file = "{sshd.client_key}"\n'
        f'known_hosts = "{known_hosts or sshd.known_hosts}"\npath = "{path}"\n'
    )


def mtimes(directory: Path) -> dict[str, int]:
    return {p.relative_to(directory).as_posix(): p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


@pytest.mark.parametrize("server", ["sshd", "plain_sshd"])
def test_after_an_update_a_resolve_and_a_render_the_host_holds_exactly_the_site(
    workdir: Path, write_config: WriteConfig, server: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """On OpenSSH's SFTP, and on a server without its posix-rename (the old file then goes aside first)."""
    sshd: SshServer = request.getfixturevalue(server)
    remote = tmp_path / "srv" / "status"
    write_config(sftp_config(sshd, remote))
    incident = send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    assert site_files(remote) == site_files(workdir / "public")
    send(workdir, "--incident", incident, "--status", "resolved", "--message", "Fixed.")
    assert site_files(remote) == site_files(workdir / "public")
    rendered = run_cli("render", cwd=workdir)
    assert rendered.returncode == 0, rendered.stderr
    assert f"ok    mirror {TARGET}: 0 uploaded, 0 deleted" in rendered.stdout
    assert site_files(remote) == site_files(workdir / "public")
    assert not [p for p in remote.rglob(".*")], "a temporary or set-aside file was left behind"


def test_one_update_rewrites_only_the_files_it_changed(
    workdir: Path, write_config: WriteConfig, sshd: SshServer, tmp_path: Path
) -> None:
    remote = tmp_path / "status"
    write_config(sftp_config(sshd, remote))
    first = send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    second = send(workdir, "--title", "Slow logins", "--status", "investigating", "--message", "Looking.")
    before, contents = mtimes(remote), site_files(remote)
    send(workdir, "--incident", second, "--status", "identified", "--message", "Found it.")
    after = site_files(remote)
    rewritten = sorted(path for path, mtime in mtimes(remote).items() if mtime != before.get(path))
    assert rewritten == sorted(path for path in after if after[path] != contents.get(path))
    assert f"incidents/{second}.html" in rewritten and f"incidents/{first}.html" not in rewritten


def test_a_host_whose_key_is_not_pinned_is_refused(
    workdir: Path, write_config: WriteConfig, sshd: SshServer, tmp_path: Path
) -> None:
    other = tmp_path / "known_hosts"
    other.write_text(f"[127.0.0.1]:{sshd.port} {(sshd.client_key.with_suffix('.pub')).read_text()}")
    write_config(sftp_config(sshd, tmp_path / "status", known_hosts=other))
    checked = run_cli("check", cwd=workdir)
    assert checked.returncode == 3
    assert f"FAIL  mirror {TARGET}: 127.0.0.1: its host key is not the one in {other}" in checked.stdout
    assert not (tmp_path / "status").exists()


def test_an_unusable_key_file_is_a_clear_permanent_failure(
    workdir: Path, write_config: WriteConfig, sshd: SshServer, tmp_path: Path
) -> None:
    """A key file that is not a key is a configuration mistake: check names it, and the other targets and
    the local directory are still checked."""
    broken = tmp_path / "not_a_key"
    broken.write_text("this is not a private key\n")
    write_config(sftp_config(sshd, tmp_path / "status").replace(str(sshd.client_key), str(broken)))
    checked = run_cli("check", cwd=workdir)
    assert checked.returncode == 3
    assert f"FAIL  mirror {TARGET}: key_file {broken} (or known_hosts) is not a usable key" in checked.stdout
    assert "ok    mirror public" in checked.stdout
