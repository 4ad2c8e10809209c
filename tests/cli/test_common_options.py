"""--config and --verbose go before the command or after it, to the same effect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.helpers import run_cli


@pytest.mark.parametrize("before", [True, False])
def test_config_before_or_after_the_command_is_the_same(tmp_path: Path, before: bool) -> None:
    site = tmp_path / "elsewhere"
    site.mkdir()
    (site / "settings.toml").write_text('[mirror]\npage_title = "Example status"\n')
    config = ["--config", str(site / "settings.toml")]
    shown = run_cli(*config, "config", cwd=tmp_path) if before else run_cli("config", *config, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["mirror"]["page_title"] == "Example status"


def test_verbose_before_the_command_is_taken(tmp_path: Path) -> None:
    assert run_cli("-v", "config", cwd=tmp_path).returncode == 0
