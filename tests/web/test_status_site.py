"""`GET /status/...`: the mirror the lanes wrote, served by the service for a single-box setup, and
nothing else: no directory listing, no hidden file, no path out of the site."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.support.helpers import eventually
from tests.web.conftest import AUTH, Client, Service

UPDATE = {"title": "Checkout errors", "status": "investigating", "message": "Some payments fail."}
SECRET = "journal-password-7f3a"


async def written_site(service: Service) -> Path:
    """Post an update and wait until the mirror lane has written the site (the first directory)."""
    response = await service.client.post("/api/v1/updates", json=UPDATE, headers=AUTH)
    assert response.status == 202
    site = service.runtime.settings.mirror.directories[0].resolve()

    async def written() -> bool:
        return (site / "index.html").exists()

    await eventually(written)
    return site


async def raw_get(client: Client, target: str) -> tuple[int, bytes]:
    """A request line sent exactly as given (as `curl --path-as-is` would), which no client library
    normalises first: a `..` reaches the server as typed."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_the_site_is_served_under_status(service: Service) -> None:
    site = await written_site(service)
    index = await service.client.get("/status/")
    assert index.status == 200
    assert index.content_type == "text/html"
    assert await index.read() == (site / "index.html").read_bytes()
    assert index.headers["Cache-Control"] == "no-cache"

    summary = await service.client.get("/status/api/v2/summary.json")
    assert summary.status == 200
    assert summary.content_type == "application/json"
    assert (await summary.json())["incidents"][0]["name"] == "Checkout errors"
    feed = await service.client.get("/status/history.atom")
    assert (feed.status, feed.content_type) == (200, "application/atom+xml")

    bare = await service.client.get("/status", allow_redirects=False)
    assert (bare.status, bare.headers["Location"]) == (308, "/status/")


async def test_a_directory_is_its_index_and_never_a_listing(service: Service) -> None:
    site = await written_site(service)
    (site / "api" / "index.html").write_text("<p>the API's index</p>")
    without_slash = await service.client.get("/status/api", allow_redirects=False)
    assert (without_slash.status, without_slash.headers["Location"]) == (308, "/status/api/")
    assert await (await service.client.get("/status/api/")).text() == "<p>the API's index</p>"
    listing = await service.client.get("/status/incidents/")  # a directory without an index
    assert listing.status == 404
    assert "Checkout" not in await listing.text()
    assert (await service.client.get("/status/no-such-page.html")).status == 404


async def test_nothing_outside_the_site_nor_hidden_is_served(service: Service, workdir: Path) -> None:
    site = await written_site(service)
    (workdir / "secret.txt").write_text(SECRET)
    (site / "leak.txt").symlink_to(workdir / "secret.txt")
    (site / ".index.html.tmp-1-ab").write_text(SECRET)  # the mirror's temporary file, mid-write
    attempts = [
        "/status/../secret.txt",
        "/status/%2e%2e/secret.txt",
        "/status/..%2fsecret.txt",
        "/status/api/../../secret.txt",
        "/status/%2E%2E%2F%2E%2E%2Fsecret.txt",
        "/status//etc/passwd",
        f"/status/{workdir}/secret.txt",
        "/status/leak.txt",
        "/status/.index.html.tmp-1-ab",
    ]
    for target in attempts:
        status, body = await raw_get(service.client, target)
        assert status in (403, 404), target
        assert SECRET.encode() not in body, target
        assert b"root:" not in body, target
    status, body = await raw_get(service.client, "/status/api/v2/status.json")
    assert status == 200  # the raw requests themselves reach the site
    assert json.loads(body)["status"]["indicator"] == "minor"
