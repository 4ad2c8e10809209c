"""The webhook channel: every update, POSTed to every configured target, signed per Standard Webhooks.

One aiohttp session (one pooled connector, [network] pins and CA applied) serves the whole lane; each
request has its target's own timeout, never follows a redirect and reads at most BODY_CAP bytes back.
The lane gives each target its own order, retries and breaker, so a slow or dead receiver only ever
delays itself. The page status sent with each update comes from one journal read per update, shared by
all its targets (an update to 1,000 receivers reads the journal once, not 1,000 times)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import ssl
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Self
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from broadcaster.domain.errors import StoreError, os_reason
from broadcaster.domain.models import Incident, Update
from broadcaster.domain.statuspage import INCIDENT_LIMIT, Site, build_site
from channels.base import (
    Channel,
    ChannelContext,
    CheckResult,
    DeliveryError,
    Job,
    JournalReader,
    PermanentError,
    Preview,
    Receipt,
    TransientError,
)
from channels.transport.http import client_session
from channels.transport.net import pinned_address, ssl_context
from channels.webhook.answers import describe_failure, raise_for_answer, read_capped, retry_after_seconds, snippet
from channels.webhook.payloads import FORMAT_NAMES, UPDATE_EVENT, UpdateBodies, page_status, ping_body
from channels.webhook.signing import Signer, message_id, signing_key, standard_headers
from channels.webhook.subscribed import SubscribedEndpoints
from config import Settings
from config.sections import NetworkSettings
from config.webhook import SUBSCRIBERS_TARGET, WebhookTarget

USER_AGENT: Final = "broadcaster-webhook/0.1 (+https://www.standardwebhooks.com/)"
SITE_TTL: Final = 5.0
"""Seconds a page status read for one update is reused by that update's other targets (and retries)."""
SITE_CACHE_SIZE: Final = 16


@dataclass(frozen=True, slots=True)
class _Target:
    """A configured target, with what every request to it needs prepared once."""

    settings: WebhookTarget
    url: URL
    signer: Signer | None
    headers: dict[str, str]
    timeout: aiohttp.ClientTimeout

    @classmethod
    def of(cls, target: WebhookTarget) -> _Target:
        secret = target.secret.get_secret_value() if target.secret else None
        headers = {name: value.get_secret_value() for name, value in target.headers.items()}
        return cls(
            settings=target,
            url=URL(target.url),  # parsed once, not on every request
            signer=Signer(signing_key(secret)) if secret else None,
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json", **headers},
            timeout=aiohttp.ClientTimeout(total=target.timeout),
        )


@dataclass(slots=True)
class _UpdateCache:
    """Each recent update's page status and bodies, kept SITE_TTL seconds: one journal read and one
    rendering per update, not per target. The lock makes the first of an update's concurrent sends read
    the journal while the others wait for its result instead of reading too."""

    load: Callable[[], Awaitable[Site]]
    drill: bool = False
    clock: Callable[[], float] = time.monotonic
    _entries: OrderedDict[str, tuple[float, UpdateBodies]] = field(default_factory=OrderedDict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self, job: Job) -> UpdateBodies:
        if (bodies := self.fresh(job.update.id)) is not None:
            return bodies
        async with self._lock:
            if (bodies := self.fresh(job.update.id)) is not None:
                return bodies
            bodies = UpdateBodies(await self.load(), job, drill=self.drill)
            self._entries[job.update.id] = (self.clock(), bodies)
            while len(self._entries) > SITE_CACHE_SIZE:
                self._entries.popitem(last=False)
            return bodies

    def fresh(self, update_id: str) -> UpdateBodies | None:
        """The update's bodies if cached and fresh: a send checks this before awaiting get()."""
        entry = self._entries.get(update_id)
        if entry is None or self.clock() - entry[0] > SITE_TTL:
            return None
        return entry[1]


class WebhookChannel(Channel):
    name = "webhook"

    def __init__(self, settings: Settings, *, journal: JournalReader, drill: bool = False) -> None:
        self._settings = settings
        self._network: NetworkSettings = settings.network
        self._journal = journal
        self._concurrency = settings.lane_policy(self.name).concurrency
        self._targets = {target.label: _Target.of(target) for target in settings.webhook.targets}
        self._scrub = settings.scrubber
        """Every configured secret (every target's URL parts, signing secret and header values), kept out of
        the receivers' answers quoted in errors."""
        self._updates = _UpdateCache(self._read_site, drill=drill)
        self._subscribed = SubscribedEndpoints(
            journal, allow_private=settings.webhook.allow_private_subscriber_urls, scrub=self._scrub
        )
        self._session: aiohttp.ClientSession | None = None
        self._tls: ssl.SSLContext | None = None
        """For check()'s bare TLS connections; built once, as loading the trusted CAs takes tens of ms."""

    @classmethod
    def create(cls, context: ChannelContext) -> Self:
        return cls(context.settings, journal=context.journal, drill=context.drill)

    async def send(self, job: Job) -> Receipt:
        if job.target == SUBSCRIBERS_TARGET and self._settings.webhook.subscribers:
            subscribed = self._updates.fresh(job.update.id) or await self._bodies(job)
            return await self._subscribed.send(
                job, lambda at: subscribed.body("json", sent_at=at), message_id(job.delivery_id)
            )
        target = self._targets.get(job.target)
        if target is None:
            raise PermanentError(f"{job.target} is no longer a configured webhook target")
        bodies = self._updates.fresh(job.update.id) or await self._bodies(job)
        now = time.time()
        body = bodies.body(target.settings.format, sent_at=now)
        msg_id = message_id(job.delivery_id)
        status, elapsed = await self._post(target, body, msg_id, timestamp=int(now))
        return Receipt(detail=f"HTTP {status} in {elapsed * 1000:.0f} ms", external_id=msg_id)

    async def check(self) -> list[CheckResult]:
        """Targets with `ping = true` get a signed ping event; the others only a TCP (and TLS) connection."""
        limit = asyncio.Semaphore(self._concurrency)

        async def one(label: str, target: _Target) -> CheckResult:
            async with limit:
                try:
                    if target.settings.ping:
                        detail = await self._ping(target)
                    else:
                        detail = await self._reach(target)
                except DeliveryError as exc:
                    return CheckResult(target=label, ok=False, detail=str(exc))
                return CheckResult(target=label, ok=True, detail=detail)

        results = list(await asyncio.gather(*(one(label, target) for label, target in self._targets.items())))
        if self._settings.webhook.subscribers:
            results.append(await self._subscribed.check())
        return results

    def preview(self, incident: Incident, update: Update) -> Preview:
        """The event every json target receives, and which body format goes to how many targets."""
        formats = Counter(target.settings.format for target in self._targets.values())
        note = ", ".join(
            f"{FORMAT_NAMES[form]} to {count} target{'s' if count != 1 else ''}" for form, count in formats.items()
        )
        return Preview(text=UPDATE_EVENT if "json" in formats else "a chat message", note=note)

    async def ping_endpoint(self, url: str, secret: str, code: str) -> bytes:
        """The signed ping confirming a subscriber's endpoint (ConfirmsEndpoints), through the same guard
        as the updates that follow it."""
        try:
            site = await self._read_site()
        except StoreError as exc:
            raise TransientError(f"journal unavailable for the page status: {exc}") from None
        return await self._subscribed.ping(url, secret, code, page=page_status(site))

    async def aclose(self) -> None:
        await self._subscribed.aclose()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    # --- requests

    def _client(self) -> aiohttp.ClientSession:
        # Built on first use: aiohttp wants its session made inside the loop that drives it, and create()
        # must stay free of connections.
        if self._session is None:
            longest = max((t.settings.timeout for t in self._targets.values()), default=30.0)
            self._session = client_session(
                self._network,
                limit=self._concurrency,
                timeout=aiohttp.ClientTimeout(total=longest),
            )
        return self._session

    async def _post(self, target: _Target, body: bytes, msg_id: str, *, timestamp: int) -> tuple[int, float]:
        """POST `body` signed as `msg_id` at `timestamp` (epoch seconds); returns (status, seconds taken) for
        a 2xx, else raises classified."""
        headers = {**target.headers, **standard_headers(msg_id, timestamp, body, target.signer)}
        url = target.settings.url
        started = time.monotonic()
        try:
            async with self._client().post(
                target.url, data=body, headers=headers, allow_redirects=False, timeout=target.timeout
            ) as response:
                answer = await read_capped(response)  # read even when unused: a drained body keeps the connection
                status, reason, answer_headers = response.status, response.reason or "", response.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(self._scrub(describe_failure(exc, timeout=target.settings.timeout, url=url))) from None
        if not 200 <= status < 300:
            raise_for_answer(
                status,
                reason,
                body=snippet(answer, scrub=self._scrub),
                retry_after=retry_after_seconds(answer_headers.get("Retry-After"), now=time.time()),
                location=answer_headers.get("Location"),
            )
        return status, time.monotonic() - started

    async def _ping(self, target: _Target) -> str:
        try:
            site = await self._read_site()
        except StoreError as exc:
            raise TransientError(f"journal unavailable for the page status: {exc}") from None
        body = ping_body(target.settings.format, site, sent_at=datetime.now(UTC))
        status, elapsed = await self._post(
            target, body, message_id(f"ping_{secrets.token_hex(8)}"), timestamp=int(time.time())
        )
        return f"ping answered HTTP {status} in {elapsed * 1000:.0f} ms"

    async def _reach(self, target: _Target) -> str:
        """Open a connection to the target (pins honoured, TLS verified for https) and close it unused."""
        parts = urlsplit(target.settings.url)
        https = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if https else 80)
        address = pinned_address(self._network, host, port) or (host, port)
        timeout = target.settings.timeout
        if https and self._tls is None:
            self._tls = ssl_context(self._network)
        try:
            async with asyncio.timeout(timeout):
                _reader, writer = await asyncio.open_connection(
                    *address, ssl=self._tls if https else None, server_hostname=host if https else None
                )
        except TimeoutError:
            raise TransientError(f"no connection to {host}:{port} within {timeout:g}s") from None
        except OSError as exc:
            raise TransientError(f"cannot connect to {host}:{port}: {os_reason(exc)}") from None
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(timeout):
                await writer.wait_closed()
        pinned = f" (pinned to {address[0]}:{address[1]})" if address != (host, port) else ""
        return f"{'TLS' if https else 'TCP'} connection to {host}:{port}{pinned} opened; nothing sent"

    # --- the page

    async def _bodies(self, job: Job) -> UpdateBodies:
        try:
            return await self._updates.get(job)
        except StoreError as exc:
            raise TransientError(f"journal unavailable for the page status: {exc}") from None

    async def _read_site(self) -> Site:
        histories = await self._journal.site_history(recent=INCIDENT_LIMIT)
        return build_site(
            histories,
            page_name=self._settings.mirror.page_title,
            public_url=self._settings.mirror.public_url,
            configured_components=self._settings.mirror.components,
        )
