"""`broadcaster render` leaves a paused mirror target alone, as the lane does, and says so."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import WriteConfig
from tests.support.helpers import run_cli


def test_render_leaves_a_paused_directory_as_it_is(workdir: Path, write_config: WriteConfig) -> None:
    write_config("[mirror]\ndirectories = ['public', 'copy']\n")
    sent = run_cli("send", "--title", "Checkout errors", "--status", "investigating", "--message", "a", cwd=workdir)
    assert sent.returncode == 0, sent.stderr
    assert run_cli("pause", "mirror", "--target", "copy", cwd=workdir).returncode == 0
    before = {p: p.stat().st_mtime_ns for p in (workdir / "copy").rglob("*") if p.is_file()}
    (workdir / "public" / "index.html").unlink()
    rendered = run_cli("render", cwd=workdir)
    assert rendered.returncode == 0, rendered.stderr
    assert "paused: left as it is (`broadcaster resume mirror --target copy`)" in rendered.stdout + rendered.stderr
    assert (workdir / "public" / "index.html").is_file(), "the other directory is rendered"
    after = {p: p.stat().st_mtime_ns for p in (workdir / "copy").rglob("*") if p.is_file()}
    assert after == before, "nothing written into the paused one"
