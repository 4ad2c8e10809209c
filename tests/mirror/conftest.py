from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from broadcaster.runtime import Runtime, open_runtime
from config import load_settings
from tests.conftest import WriteConfig


@pytest.fixture
async def runtime(write_config: WriteConfig) -> AsyncIterator[Runtime]:
    """A journal whose mirror names three components (in this order) and writes into ./public."""
    path = write_config('[mirror]\npage_title = "Example status"\ncomponents = ["API", "Dashboard", "Billing"]\n')
    opened = await open_runtime(load_settings(path))
    yield opened
    await opened.close()
