"""Secrets the broadcaster makes for itself: made once, kept private, the same for every process."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from config.keys import stored_secret


def test_a_stored_secret_is_made_once_and_kept(tmp_path: Path) -> None:
    first = stored_secret(tmp_path / "var", "unsubscribe")
    assert len(first) == 64
    assert stored_secret(tmp_path / "var", "unsubscribe") == first
    assert stored_secret(tmp_path / "var", "session") != first
    mode = stat.S_IMODE((tmp_path / "var" / "unsubscribe.key").stat().st_mode)
    assert mode == 0o600
    assert [p.name for p in (tmp_path / "var").iterdir() if p.name.startswith(".")] == []  # no drafts left


def test_makers_racing_agree_on_one_secret(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        made = set(pool.map(lambda _: stored_secret(tmp_path, "race"), range(32)))
    assert len(made) == 1


def test_a_damaged_key_file_is_an_error_not_a_weak_key(tmp_path: Path) -> None:
    (tmp_path / "session.key").write_text("short\n")
    with pytest.raises(ValueError, match="damaged"):
        stored_secret(tmp_path, "session")
