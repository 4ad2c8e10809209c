"""A directory of the site never links to a page it lacks: an update also writes the pages of incidents the
directory has never had (journaled before the directory was added, or sent to other channels only)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.models import UpdateDraft
from broadcaster.runtime import open_runtime
from config import load_settings
from tests.conftest import WriteConfig


def broken_links(site: Path) -> list[str]:
    """Relative links of every page that point at no file of the site."""
    broken = []
    for page in site.rglob("*.html"):
        for link in re.findall(r'href="([^":#?]+\.html)"', page.read_text()):
            if not (page.parent / link).resolve().is_file():
                broken.append(f"{page.relative_to(site)} -> {link}")
    return broken


async def test_a_directory_added_later_gets_the_pages_its_index_links_to(
    workdir: Path, write_config: WriteConfig
) -> None:
    runtime = await open_runtime(load_settings(write_config("[mirror]\ndirectories = ['public', 'copy']\n")))
    try:
        async with Dispatcher(runtime, poll_interval=0.05) as dispatcher:
            first = await dispatcher.submit(UpdateDraft(title="Checkout errors", status="investigating", message="a"))
            await dispatcher.settle([first.update.id], wait=30)
            shutil.rmtree(workdir / "copy")  # as if [mirror] directories gained "copy" after that incident
            second = await dispatcher.submit(UpdateDraft(title="Slow search", status="investigating", message="b"))
            await dispatcher.settle([second.update.id], wait=30)
    finally:
        await runtime.close()
    copy = workdir / "copy"
    assert (copy / "incidents" / f"{first.incident.id}.html").is_file()
    assert broken_links(copy) == []
    assert broken_links(workdir / "public") == []
