"""Publishing to a branch of a git remote (GitHub, GitLab or Codeberg Pages) with the git command line.

The staging copy of the site is the work tree; the repository lives beside it (<data_dir>/publish/<name>/git).
Each publish reads the remote branch first: when its tip is not the one this target last pushed (someone
committed a CNAME, say), the commit builds on that tip, so what others committed stays. The push replaces the
branch only if it is still at the tip read (--force-with-lease), so the remote flips from the old site to the
new in one step and never loses a commit pushed meanwhile. Once the branch holds more than keep_commits
commits it is replaced by one orphan commit of the current site. Credentials never reach a command line: an
SSH key through GIT_SSH_COMMAND, a token as an HTTP header in git's environment; both are scrubbed from what
git says."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shlex
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from channels.base import PermanentError, TransientError
from channels.mirror.publish.manifest import Plan
from channels.mirror.publish.sync import Progress
from config.publish import GitTarget

# What git says when waiting cannot help: the remote refuses these credentials or this push.
_REFUSALS: Final = ("Authentication failed", "Permission denied", "could not read Username", "denied", "not found")
PUSHED: Final = "refs/broadcaster/pushed"
"""The commit this target last pushed: a remote tip other than it holds someone else's commits."""


class GitPublisher:
    def __init__(self, settings: GitTarget, root: Path) -> None:
        self.settings = settings
        self._git_dir = root / "git"
        self._work_tree = root / "site"
        self._env = self._environment()
        self._secrets = self._secret_forms()

    async def publish(self, site: Path, files: Mapping[str, bytes], work: Plan, progress: Progress) -> None:
        branch = self.settings.branch
        await self._init()
        tip = await self._remote_tip()
        if tip and tip != await self._try("rev-parse", "--verify", "--quiet", PUSHED):
            await self._build_on(tip)
        # Files the remote branch has that this target never put there (a CNAME, say) stay: only what the
        # plan deletes leaves the index; a file's removal from the work tree alone is not staged.
        await self._git("add", "--ignore-removal", "--", ".")
        if work.deletions:
            await self._git("rm", "--cached", "--quiet", "--ignore-unmatch", "--", *work.deletions)
        if await self._try("diff", "--cached", "--quiet") is None:  # it answers no: there are changes
            await self._git("commit", "--quiet", "--no-verify", "-m", f"Status site: {self._summary(work)}")
        count = int(await self._git("rev-list", "--count", "HEAD"))
        if count > self.settings.keep_commits:
            squashed = await self._git("commit-tree", "HEAD^{tree}", "-m", "Status site (history squashed)")
            await self._git("update-ref", f"refs/heads/{branch}", squashed)
        head = await self._git("rev-parse", "HEAD")
        if head != tip:
            lease = f"--force-with-lease=refs/heads/{branch}:{tip}"  # an empty tip: the branch must not exist
            await self._git("push", "--quiet", lease, "origin", f"HEAD:refs/heads/{branch}")
        await self._git("update-ref", PUSHED, head)

    async def check(self) -> str:
        """Reads the remote's branches and, once there is a local commit, pushes it in a dry run."""
        await self._init()
        await self._git("ls-remote", "--heads", "origin", self.settings.branch)
        if await self._try("rev-parse", "--verify", "--quiet", "HEAD"):
            await self._git(
                "push", "--dry-run", "--quiet", "--force", "origin", f"HEAD:refs/heads/{self.settings.branch}"
            )
            return f"remote reachable, credentials accepted, branch {self.settings.branch} takes a push (dry run)"
        return f"remote reachable, credentials accepted (branch {self.settings.branch} not published yet)"

    async def aclose(self) -> None:
        return None

    def _summary(self, work: Plan) -> str:
        return f"{len(work.uploads)} files changed, {len(work.deletions)} removed"

    async def _init(self) -> None:
        """A repository for the target (Staging.claim removes it when the target points elsewhere), pointed at
        the configured remote, with no lock left by a git killed mid-command (the target's lock is held)."""
        if not (self._git_dir / "HEAD").exists():
            self._git_dir.parent.mkdir(parents=True, exist_ok=True)
            await self._git("init", "--quiet", f"--initial-branch={self.settings.branch}")
            await self._git("remote", "add", "origin", self.settings.remote)
        for stale in [*self._git_dir.glob("*.lock"), *self._git_dir.glob("refs/**/*.lock")]:
            stale.unlink(missing_ok=True)
        await self._git("remote", "set-url", "origin", self.settings.remote)

    async def _remote_tip(self) -> str:
        """The remote branch's commit; "" when the branch does not exist."""
        listed = await self._git("ls-remote", "--heads", "origin", f"refs/heads/{self.settings.branch}")
        return listed.split()[0] if listed else ""

    async def _build_on(self, tip: str) -> None:
        """Make the remote's commit `tip` the branch's, its files the index's: this publish commits on it."""
        branch = self.settings.branch
        await self._git("fetch", "--quiet", "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}")
        await self._git("update-ref", f"refs/heads/{branch}", tip)
        await self._git("read-tree", tip)

    async def _git(self, *args: str) -> str:
        """Run git; its output, stripped. Raises TransientError or PermanentError, git's words scrubbed."""
        code, out, err = await self._run(args)
        if code == 0:
            return out
        said = self._scrub(err.splitlines()[-1:] or [f"exit status {code}"])
        reason = f"git {args[0]} failed: {said}"
        raise (PermanentError if any(word in said for word in _REFUSALS) else TransientError)(reason)

    async def _try(self, *args: str) -> str | None:
        """Run git; its output, or None when it exits non-zero (a question answered no)."""
        code, out, _err = await self._run(args)
        return out if code == 0 else None

    async def _run(self, args: tuple[str, ...]) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            "git",
            *args,
            env=self._env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so that ending it ends its ssh too
        )
        try:
            async with asyncio.timeout(self.settings.timeout):
                out, err = await process.communicate()
        except TimeoutError:
            _end(process.pid)
            await process.wait()
            raise TransientError(f"git {args[0]} got no answer within {self.settings.timeout:g} s") from None
        except BaseException:
            _end(process.pid)
            raise
        assert process.returncode is not None
        return process.returncode, out.decode(errors="replace").strip(), err.decode(errors="replace").strip()

    def _scrub(self, lines: list[str]) -> str:
        text = " ".join(lines)
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text

    def _environment(self) -> dict[str, str]:
        # HOME is the target's own directory: no user or system configuration (credential helpers, URL
        # rewrites, hooks) changes what git does here.
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self._git_dir.parent),
            "LC_ALL": "C",
            "GIT_DIR": str(self._git_dir),
            "GIT_WORK_TREE": str(self._work_tree),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": self._author()[0],
            "GIT_AUTHOR_EMAIL": self._author()[1],
            "GIT_COMMITTER_NAME": self._author()[0],
            "GIT_COMMITTER_EMAIL": self._author()[1],
        }
        settings = self.settings
        if settings.token is not None:
            env |= {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader"}
            env["GIT_CONFIG_VALUE_0"] = f"Authorization: Basic {self._basic()}"
        if settings.ssh_key_file is not None and settings.known_hosts is not None:
            env["GIT_SSH_COMMAND"] = shlex.join(
                [
                    "ssh",
                    "-F",
                    "/dev/null",
                    "-i",
                    str(settings.ssh_key_file.resolve()),
                    "-o",
                    "IdentitiesOnly=yes",
                    "-o",
                    f"UserKnownHostsFile={settings.known_hosts.resolve()}",
                    "-o",
                    "StrictHostKeyChecking=yes",
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    f"ConnectTimeout={max(1, int(settings.timeout))}",
                ]
            )
        return env

    def _author(self) -> tuple[str, str]:
        name, _, email = self.settings.author.partition("<")
        return name.strip() or "broadcaster", email.rstrip(">").strip() or "broadcaster@localhost"

    def _basic(self) -> str:
        token = self.settings.token.get_secret_value() if self.settings.token else ""
        return base64.b64encode(f"{self.settings.token_user}:{token}".encode()).decode("ascii")

    def _secret_forms(self) -> list[str]:
        if self.settings.token is None:
            return []
        return [self.settings.token.get_secret_value(), self._basic()]


def _end(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
