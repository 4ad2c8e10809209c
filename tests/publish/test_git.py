"""Publishing the status site to a branch of a bare git repository, with the real git command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import WriteConfig
from tests.publish.servers import site_files
from tests.publish.test_s3 import send
from tests.support.helpers import run_cli

TARGET = "publish:pages"


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True, timeout=30)
    return done.stdout.decode().strip()


def branch_files(remote: Path, branch: str = "gh-pages") -> dict[str, bytes]:
    listing = git("--git-dir", str(remote), "ls-tree", "-r", "--name-only", branch).splitlines()
    return {
        path: subprocess.run(
            ["git", "--git-dir", str(remote), "cat-file", "blob", f"{branch}:{path}"],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        for path in listing
    }


def commits(remote: Path, branch: str = "gh-pages") -> int:
    return int(git("--git-dir", str(remote), "rev-list", "--count", branch))


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    path = tmp_path / "pages.git"
    git("init", "--quiet", "--bare", str(path))
    return path


def git_config(remote: Path, extra: str = "") -> str:
    return (
        '[mirror]\ndirectories = ["public"]\n\n[[mirror.publish]]\nkind = "git"\nname = "pages"\n'
        f'remote = "{remote}"\n{extra}'
    )


def test_after_an_update_a_resolve_and_a_render_the_branch_holds_exactly_the_site(
    workdir: Path, write_config: WriteConfig, remote: Path
) -> None:
    write_config(git_config(remote))
    incident = send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    assert branch_files(remote) == site_files(workdir / "public")
    send(workdir, "--incident", incident, "--status", "resolved", "--message", "Fixed.")
    assert branch_files(remote) == site_files(workdir / "public")
    assert commits(remote) == 2
    rendered = run_cli("render", cwd=workdir)
    assert rendered.returncode == 0, rendered.stderr
    assert f"ok    mirror {TARGET}: 0 uploaded, 0 deleted" in rendered.stdout
    assert branch_files(remote) == site_files(workdir / "public")
    assert commits(remote) == 2, "a render that changes nothing commits nothing"


def test_the_history_is_squashed_beyond_keep_commits(workdir: Path, write_config: WriteConfig, remote: Path) -> None:
    write_config(git_config(remote, "keep_commits = 3\n"))
    incident = send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    counts = [commits(remote)]
    for n in range(4):
        send(workdir, "--incident", incident, "--status", "identified", "--message", f"Step {n}.")
        counts.append(commits(remote))
    assert counts == [1, 2, 3, 1, 2]
    assert branch_files(remote) == site_files(workdir / "public")


def test_a_first_publish_keeps_what_the_branch_had_that_the_site_lacks(
    workdir: Path, write_config: WriteConfig, remote: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(remote), str(clone))
    (clone / "CNAME").write_text("status.example.com\n")
    git("-c", "user.name=t", "-c", "user.email=t@t", "checkout", "--quiet", "-b", "gh-pages", cwd=clone)
    git("add", "CNAME", cwd=clone)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "custom domain", cwd=clone)
    git("push", "--quiet", "origin", "gh-pages", cwd=clone)

    write_config(git_config(remote))
    send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    held = branch_files(remote)
    assert held.pop("CNAME") == b"status.example.com\n"
    assert held == site_files(workdir / "public")
    assert commits(remote) == 2


def test_a_target_pointed_at_another_remote_pushes_the_site_there(
    workdir: Path, write_config: WriteConfig, remote: Path, tmp_path: Path
) -> None:
    write_config(git_config(remote))
    incident = send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    moved = tmp_path / "moved.git"
    git("init", "--quiet", "--bare", str(moved))
    write_config(git_config(moved))
    send(workdir, "--incident", incident, "--status", "identified", "--message", "Found it.")
    assert branch_files(moved) == site_files(workdir / "public")


def test_a_commit_pushed_by_someone_else_between_publishes_stays(
    workdir: Path, write_config: WriteConfig, remote: Path, tmp_path: Path
) -> None:
    write_config(git_config(remote))
    incident = send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    theirs = add_cname(remote, tmp_path / "clone")

    send(workdir, "--incident", incident, "--status", "identified", "--message", "Found it.")
    held = branch_files(remote)
    assert held.pop("CNAME") == b"status.example.com\n"
    assert held == site_files(workdir / "public")
    git("--git-dir", str(remote), "merge-base", "--is-ancestor", theirs, "gh-pages")  # raises if it is not


def test_a_lock_left_by_a_killed_git_does_not_stop_the_next_publish(
    workdir: Path, write_config: WriteConfig, remote: Path
) -> None:
    write_config(git_config(remote))
    incident = send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    (workdir / "var" / "publish" / "pages" / "git" / "index.lock").write_bytes(b"")
    send(workdir, "--incident", incident, "--status", "identified", "--message", "Found it.")
    assert branch_files(remote) == site_files(workdir / "public")


def add_cname(remote: Path, clone: Path) -> str:
    """Commit a CNAME to the remote's gh-pages branch as a person would; the commit's id."""
    git("clone", "--quiet", "--branch", "gh-pages", str(remote), str(clone))
    (clone / "CNAME").write_text("status.example.com\n")
    git("add", "CNAME", cwd=clone)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "custom domain", cwd=clone)
    git("push", "--quiet", "origin", "gh-pages", cwd=clone)
    return git("rev-parse", "HEAD", cwd=clone)
