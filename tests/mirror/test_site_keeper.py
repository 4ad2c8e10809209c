"""serve's own renders of this host's status site on a journal shared by instances (site_renders.SiteKeeper):
an update nobody here delivered shows at the next look (an older one adopted after an outage too), a render
that could not write is tried again, and a directory resumed from a pause gets what it missed. No lane runs
here: only the keeper writes the site."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from broadcaster import site_renders
from broadcaster.domain.models import UpdateDraft
from broadcaster.runtime import Runtime, open_runtime
from broadcaster.site_renders import SiteKeeper
from broadcaster.store.failover import FailoverStore
from broadcaster.store.failover.watch import refresh
from broadcaster.store.redis import RedisStore
from config import load_settings
from tests.conftest import WriteConfig
from tests.store.test_failover import back_again, redis_alone, shared, store
from tests.support.journal import planned
from tests.support.journal import post as post_to
from tests.support.redis import RedisServer

__all__ = ["redis_alone", "shared", "store"]  # fixtures, shared with tests/store/test_failover.py


def site_of(runtime: Runtime) -> Path:
    return Path(str(runtime.settings.mirror.directories[0]))


async def post(runtime: Runtime, title: str) -> str:
    """An update journaled as another instance would: nothing in this process delivers it."""
    draft = UpdateDraft(title=title, status="investigating", message="Looking into it.")
    return (await runtime.submit(draft)).incident.id


def shows(runtime: Runtime, incident_id: str) -> bool:
    return (site_of(runtime) / "incidents" / f"{incident_id}.html").is_file()


async def test_an_update_made_elsewhere_shows_at_the_next_look(runtime: Runtime) -> None:
    keeper = SiteKeeper(runtime)
    before = await post(runtime, "Checkout errors")
    await keeper.look()  # the whole site: this host's copy may be behind
    assert shows(runtime, before)
    later = [await post(runtime, "Login slow"), await post(runtime, "Search down")]  # both before the next look
    await keeper.look()
    assert all(shows(runtime, incident) for incident in later)
    index = (site_of(runtime) / "index.html").read_text()
    assert "Login slow" in index and "Search down" in index


async def test_a_render_that_could_not_write_is_tried_again(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(site_renders, "RETRY_AFTER_FAILURE", 0.0)  # at the next look
    keeper = SiteKeeper(runtime)
    await keeper.look()
    site = site_of(runtime)
    shutil.rmtree(site)
    site.write_text("a lost mount")  # where the directory was: every write fails
    incident = await post(runtime, "Checkout errors")
    await keeper.look()
    site.unlink()
    await keeper.look()
    assert shows(runtime, incident)


async def test_a_directory_resumed_from_a_pause_gets_what_it_missed(runtime: Runtime) -> None:
    keeper = SiteKeeper(runtime)
    await keeper.look()
    target = str(runtime.settings.mirror.directories[0])
    await runtime.store.set_paused("mirror", target, paused=True, reason="a test", now=time.time())
    incident = await post(runtime, "Checkout errors")
    await keeper.look()
    assert not shows(runtime, incident)  # left as it is while paused
    await runtime.store.set_paused("mirror", target, paused=False, reason="", now=time.time())
    await keeper.look()
    assert shows(runtime, incident)


async def test_an_older_update_adopted_after_an_outage_shows_too(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore, write_config: WriteConfig
) -> None:
    """An instance posts to an incident while Redis is down; another posts to it meanwhile, later, straight to
    Redis. The first one's update, adopted when it comes back, leaves the incident's time as the later one set
    it: the keeper of a third host (on Redis) still renders it."""
    opened = await post_to(store, planned("a"), title="Checkout errors")
    await refresh(store)
    redis_alone.stop()
    await post_to(store, planned("a"), incident_id=opened.incident.id, status="identified", message="Found it.")
    redis_alone.start(again=True)
    await shared.open()
    await post_to(shared, planned("a"), incident_id=opened.incident.id, status="monitoring", message="Fixed.")
    runtime = await open_runtime(load_settings(write_config(f'[store]\nurl = "{redis_alone.url}"\n')))
    try:
        keeper = SiteKeeper(runtime)
        await keeper.look()
        page = site_of(runtime) / "incidents" / f"{opened.incident.id}.html"
        assert "Fixed." in page.read_text() and "Found it." not in page.read_text()
        await back_again(store, redis_alone, start=False)  # adopts "Found it."
        await keeper.look()
        assert "Found it." in page.read_text()
    finally:
        await runtime.close()
