"""Two processes publishing to one target: each renders only once it holds the target's lock, and a site
older than the one the target holds (by the journal it shows) never replaces it."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from broadcaster.store.sqlite import SqliteStore
from channels.base import ChannelContext
from channels.mirror.channel import MirrorChannel
from channels.mirror.publish import Publishing, Rendered
from config import load_settings
from config.publish import GitTarget
from tests.conftest import WriteConfig
from tests.publish.test_git import branch_files, git, git_config

TARGET = "publish:pages"


class LockProbe:
    """The journal, noting for each read of the site's history list whether the target's lock was held."""

    def __init__(self, journal: SqliteStore, lock: Path) -> None:
        self._journal = journal
        self._lock = lock
        self.held: list[bool] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._journal, name)

    async def incident_summaries(self) -> Any:
        self.held.append(_locked(self._lock))
        return await self._journal.incident_summaries()


def _locked(lock: Path) -> bool:
    if not lock.exists():
        return False
    handle = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(handle)  # a lock of its own, on its own open file: closing releases only that
    return False


async def test_a_render_renders_for_each_target_while_holding_its_lock(
    workdir: Path, write_config: WriteConfig, store: SqliteStore
) -> None:
    remote = workdir / "pages.git"
    git("init", "--quiet", "--bare", str(remote))
    settings = load_settings(write_config(git_config(remote)))
    probe = LockProbe(store, workdir / "var" / "publish" / "pages" / "lock")
    mirror = MirrorChannel.create(ChannelContext(settings, probe))
    try:
        results = await mirror.render_all()
    finally:
        await mirror.aclose()
    assert all(result.ok for result in results), results
    assert probe.held == [False, True], "the directories' render, then the target's, under its lock"


def site(revision: str, index: bytes) -> Any:
    async def render(whole: bool, also: Sequence[str] = ()) -> Rendered:
        return Rendered({"index.html": index}, revision)

    return render


async def test_a_site_older_than_the_one_the_target_holds_is_not_published(tmp_path: Path, store: SqliteStore) -> None:
    remote = tmp_path / "pages.git"
    git("init", "--quiet", "--bare", str(remote))
    publishing = Publishing(
        [GitTarget(kind="git", name="pages", remote=str(remote))], data_dir=tmp_path / "var", journal=store
    )
    try:
        await publishing.publish(TARGET, site("2024-05-02T10:00:00.000000Z 2024-05-02", b"newer"))
        skipped = await publishing.publish(TARGET, site("2024-05-01T10:00:00.000000Z 2024-05-02", b"older"))
        assert branch_files(remote) == {"index.html": b"newer"}
        assert skipped.detail.startswith("skipped")
        await publishing.publish(TARGET, site("2024-05-02T10:00:00.000000Z 2024-05-03", b"next day"))
        assert branch_files(remote) == {"index.html": b"next day"}
    finally:
        await publishing.aclose()
