"""A bucket that never answers holds back nothing else, and a publish killed at any point leaves the bucket
serving an index that links only to pages it has; `broadcaster retry` then brings the bucket up to date."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.conftest import WriteConfig
from tests.publish.conftest import s3_config
from tests.publish.servers import MotoServer, S3Proxy, site_files
from tests.publish.test_s3 import TARGET, missing_pages, send
from tests.support.helpers import run_cli, send_and_kill

QUICK_LANE = "\n[retry.mirror]\ntimeout = 1\nmax_attempts = 2\nbase_delay = 0.1\nmax_delay = 0.2\n"


def test_a_bucket_that_never_answers_does_not_hold_back_the_directory_and_retry_catches_it_up(
    workdir: Path, write_config: WriteConfig, moto: MotoServer, proxy: S3Proxy, bucket: str
) -> None:
    write_config(s3_config(bucket, proxy.url, extra=QUICK_LANE))
    proxy.hang = True
    sent = run_cli(
        "send", "--title", "API errors", "--status", "investigating", "--message", "Looking.", "--json", cwd=workdir
    )
    assert sent.returncode == 3, sent.stderr
    states = {d["target"]: d["state"] for d in json.loads(sent.stdout)["deliveries"]}
    assert states["public"] == "delivered"
    assert states[TARGET] in {"pending", "failed"}
    assert (workdir / "public" / "index.html").exists()
    assert proxy.held > 0 and moto.objects(bucket) == {}

    proxy.hang = False
    retried = run_cli("retry", "--failed", cwd=workdir)
    assert retried.returncode == 0, retried.stderr
    assert moto.objects(bucket) == site_files(workdir / "public")


@pytest.mark.parametrize("uploads_before_kill", [1, 2, 5])
def test_a_publish_killed_between_uploads_never_leaves_the_index_linking_to_a_missing_page(
    write_config: WriteConfig, moto: MotoServer, proxy: S3Proxy, bucket: str, uploads_before_kill: int
) -> None:
    workdir = write_config(s3_config(bucket, proxy.url)).parent
    send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    before = moto.objects(bucket)

    proxy.hold_after = len(proxy.uploads()) + uploads_before_kill
    status = send_and_kill(
        ["send", "--title", "Slow logins", "--status", "investigating", "--message", "Looking into it."],
        cwd=workdir,
        when=lambda: proxy.held > 0,
    )
    assert status == -signal.SIGKILL
    held = moto.objects(bucket)
    assert held != before, "killed before any upload: nothing was tested"
    assert missing_pages(held) == set()

    proxy.hold_after = None
    retried = run_cli("retry", cwd=workdir)
    assert retried.returncode == 0, retried.stderr
    assert moto.objects(bucket) == site_files(workdir / "public")


def test_a_publish_cut_off_by_the_lane_timeout_resumes_where_it_stopped(
    workdir: Path, write_config: WriteConfig, moto: MotoServer, proxy: S3Proxy, bucket: str
) -> None:
    """A first publish too large for one attempt: what its finished batches sent is not sent again."""
    write_config(s3_config(bucket, proxy.url, extra="concurrency = 1\n" + QUICK_LANE))
    proxy.hold_after = 6
    sent = run_cli("send", "--title", "API errors", "--status", "investigating", "--message", "Looking.", cwd=workdir)
    assert sent.returncode == 3, sent.stderr
    first = proxy.uploads()
    assert first, "cut off before any upload: nothing was tested"

    proxy.hold_after = None
    proxy.passed.clear()
    retried = run_cli("retry", "--failed", cwd=workdir)
    assert retried.returncode == 0, retried.stderr
    assert moto.objects(bucket) == site_files(workdir / "public")
    assert first[0] not in proxy.uploads(), "the retry sent again what a finished batch had sent"
    assert len(proxy.uploads()) < len(site_files(workdir / "public"))
