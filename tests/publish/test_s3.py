"""Publishing the status site to an S3-compatible store: moto's standalone server, in its own process, behind a
proxy the test steers and counts requests through."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from channels.mirror.publish.s3 import S3Remote
from config.publish import S3Target
from config.sections import NetworkSettings
from tests.conftest import WriteConfig
from tests.publish.conftest import s3_config
from tests.publish.servers import MotoServer, S3Proxy, site_files
from tests.support.channels import GATE_ENV, SINK_ENV
from tests.support.helpers import run_cli

TARGET = "publish:bucket"


def send(workdir: Path, *args: str) -> str:
    """`broadcaster send ARGS --json`; the incident id."""
    done = run_cli("send", *args, "--json", cwd=workdir)
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["incident_id"])


def ledger_detail(workdir: Path, incident_id: str) -> list[str]:
    """The publish target's delivery details for the incident, oldest first."""
    shown = run_cli("status", incident_id, "--json", cwd=workdir)
    assert shown.returncode == 0, shown.stderr
    return [
        d["detail"]
        for update in json.loads(shown.stdout)["updates"]
        for d in update["deliveries"]
        if d["target"] == TARGET
    ]


def test_after_an_update_a_resolve_and_a_render_the_bucket_holds_exactly_the_site(
    workdir: Path, write_config: WriteConfig, moto: MotoServer, proxy: S3Proxy, bucket: str
) -> None:
    write_config(s3_config(bucket, proxy.url))
    incident = send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    assert moto.objects(bucket) == site_files(workdir / "public")
    send(workdir, "--incident", incident, "--status", "resolved", "--message", "Fixed.")
    assert moto.objects(bucket) == site_files(workdir / "public")
    rendered = run_cli("render", cwd=workdir)
    assert rendered.returncode == 0, rendered.stderr
    assert f"ok    mirror {TARGET}: 0 uploaded, 0 deleted" in rendered.stdout
    assert moto.objects(bucket) == site_files(workdir / "public")


def test_each_file_goes_up_with_its_content_type_and_cache_lifetime(
    workdir: Path, write_config: WriteConfig, moto: MotoServer, proxy: S3Proxy, bucket: str
) -> None:
    write_config(s3_config(bucket, proxy.url))
    incident = send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    client = moto.client()

    def head(key: str) -> tuple[str, str]:
        found = client.head_object(Bucket=bucket, Key=key)
        return found["ContentType"], found["CacheControl"]

    assert head("index.html") == ("text/html; charset=utf-8", "public, max-age=30")
    assert head("api/v2/summary.json") == ("application/json", "public, max-age=30")
    assert head("history.atom") == ("application/atom+xml", "public, max-age=30")
    assert head(f"incidents/{incident}.html") == ("text/html; charset=utf-8", "public, max-age=300")


def test_an_unchanged_site_uploads_nothing_and_an_update_only_what_it_changed(
    workdir: Path, write_config: WriteConfig, moto: MotoServer, proxy: S3Proxy, bucket: str
) -> None:
    write_config(s3_config(bucket, proxy.url))
    first = send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    second = send(workdir, "--title", "Slow logins", "--status", "investigating", "--message", "Looking.")
    before = {key: content for key, content in moto.objects(bucket).items()}
    proxy.passed.clear()

    rendered = run_cli("render", cwd=workdir)
    assert rendered.returncode == 0, rendered.stderr
    assert proxy.uploads() == []

    send(workdir, "--incident", second, "--status", "identified", "--message", "Found it.")
    after = moto.objects(bucket)
    changed = sorted(key for key in after if after[key] != before.get(key))
    assert f"incidents/{second}.html" in changed and f"incidents/{first}.html" not in changed
    assert sorted(path.removeprefix(f"/{bucket}/") for path in proxy.uploads()) == changed
    assert ledger_detail(workdir, second)[-1].startswith(f"{len(changed)} uploaded, 0 deleted")


def test_a_first_publish_deletes_nothing_it_did_not_put_there(
    workdir: Path, write_config: WriteConfig, moto: MotoServer, proxy: S3Proxy, bucket: str
) -> None:
    """Without a manifest (a first publish, a journal restored from a kit), what the bucket holds that the site
    lacks stays; the site's own files are overwritten."""
    moto.client().put_object(Bucket=bucket, Key="robots.txt", Body=b"User-agent: *\n")
    moto.client().put_object(Bucket=bucket, Key="index.html", Body=b"an old index")
    write_config(s3_config(bucket, proxy.url))
    send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    held = moto.objects(bucket)
    assert held.pop("robots.txt") == b"User-agent: *\n"
    assert held == site_files(workdir / "public")


def test_the_index_links_only_to_pages_the_bucket_has(
    workdir: Path, write_config: WriteConfig, moto: MotoServer, proxy: S3Proxy, bucket: str
) -> None:
    write_config(s3_config(bucket, proxy.url))
    send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    held = moto.objects(bucket)
    assert missing_pages(held) == set()
    assert re.search(rb'href="incidents/[^"]+\.html"', held["index.html"])


def test_an_update_also_publishes_the_pages_of_incidents_the_mirror_never_rendered(
    workdir: Path, write_config: WriteConfig, moto: MotoServer, proxy: S3Proxy, bucket: str
) -> None:
    """An incident sent to another channel only is listed by the index from then on: the next update's
    publish sends its page along."""
    write_config(s3_config(bucket, proxy.url))
    first = send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    (workdir / "gate-open").touch()
    elsewhere = run_cli(
        *("send", "--title", "Slow logins", "--status", "investigating", "--message", "Looking."),
        *("--channel", "gate", "--json"),
        cwd=workdir,
        env={GATE_ENV: str(workdir / "gate-open"), SINK_ENV: str(workdir / "sink")},
        module="tests.support.cli",
    )
    assert elsewhere.returncode == 0, elsewhere.stderr
    second = json.loads(elsewhere.stdout)["incident_id"]

    send(workdir, "--incident", first, "--status", "identified", "--message", "Found it.")
    held = moto.objects(bucket)
    assert f"incidents/{second}.html" in held
    assert missing_pages(held) == set()


def test_a_target_pointed_at_another_prefix_gets_the_whole_site_there(
    workdir: Path, write_config: WriteConfig, moto: MotoServer, proxy: S3Proxy, bucket: str
) -> None:
    write_config(s3_config(bucket, proxy.url))
    incident = send(workdir, "--title", "API errors", "--status", "investigating", "--message", "Looking.")
    write_config(s3_config(bucket, proxy.url, extra='prefix = "status/"\n'))
    send(workdir, "--incident", incident, "--status", "identified", "--message", "Found it.")
    held = moto.objects(bucket)
    moved = {key.removeprefix("status/"): content for key, content in held.items() if key.startswith("status/")}
    assert moved == site_files(workdir / "public")


async def test_keys_refused_as_unknown_are_read_again_once_before_the_publish_fails(
    tmp_path: Path, moto: MotoServer, proxy: S3Proxy, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys from the credentials file, rotated there while the service runs: the next refusal reads them again."""
    profile = tmp_path / "credentials"
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(profile))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    profile.write_text("[default]\naws_access_key_id = AKIAOLDKEY\naws_secret_access_key = old-secret\n")
    remote = S3Remote(S3Target(kind="s3", bucket=bucket, endpoint_url=proxy.url), NetworkSettings())
    try:
        await remote.put("index.html", b"first")
        profile.write_text("[default]\naws_access_key_id = AKIANEWKEY\naws_secret_access_key = new-secret\n")
        proxy.refused_key = "AKIAOLDKEY"
        await remote.put("index.html", b"second")
    finally:
        await remote.aclose()
    assert moto.objects(bucket) == {"index.html": b"second"}


def missing_pages(held: dict[str, bytes]) -> set[str]:
    """Incident pages that the remote's index or JSON link to and the remote lacks."""
    linked = set(re.findall(rb'href="(incidents/[^"]+\.html)"', held.get("index.html", b"")))
    for name in ("api/v2/incidents.json", "api/v2/summary.json"):
        linked |= set(re.findall(rb"(incidents/[0-9a-z]+\.html)", held.get(name, b"")))
    return {link.decode() for link in linked} - set(held)
