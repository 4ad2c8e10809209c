"""serve's own renders of this host's status site on a journal shared by instances (site_renders.SiteKeeper):
an update nobody here delivered shows at the next look, a render that could not write is tried again, and a
directory resumed from a pause gets what it missed. No lane runs here: only the keeper writes the site."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from broadcaster import site_renders
from broadcaster.domain.models import UpdateDraft
from broadcaster.runtime import Runtime
from broadcaster.site_renders import SiteKeeper


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
    later = await post(runtime, "Login slow")
    await keeper.look()
    assert shows(runtime, later)
    assert "Login slow" in (site_of(runtime) / "index.html").read_text()


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
