"""Endpoints customers registered themselves: one update to every confirmed subscriber endpoint that
follows it, and the signed ping that confirms a new one.

The subscribers are one delivery target ("subscribers"), as email's are: the lane gives the fan-out its
retries, timeout and TTL, and each endpoint's result is saved as the delivery's progress (keyed by a digest
of the URL, which may carry a credential and is never written anywhere else), so a retry calls only the
endpoints not reached yet. An endpoint that refuses for good (a 4xx) is not called again for this update;
one that answers 410 Gone is unsubscribed. Every request goes through a resolver that allows only public
addresses (channels.transport.guard), unless the operator allowed private ones for testing, and never
follows a redirect."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Final

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from broadcaster.domain.errors import StoreError
from broadcaster.domain.subscriptions import Subscriber, endpoint_id, follows
from channels.base import (
    CheckResult,
    DeliveryError,
    Interrupted,
    Job,
    JournalReader,
    PermanentError,
    Receipt,
    SubscriberReader,
    TargetGone,
    TransientError,
)
from channels.transport.guard import PublicOnlyResolver, RefusedAddress, host_refusal
from channels.webhook.answers import describe_failure, raise_for_answer, read_capped, snippet
from channels.webhook.signing import Signer, signing_key, standard_headers
from config.webhook import SUBSCRIBERS_TARGET

log = logging.getLogger("broadcaster.webhook")

PING_EVENT: Final = "subscription.ping"
ENDPOINT_TIMEOUT: Final = 10.0
"""Seconds one subscriber endpoint may take: a customer's receiver should answer at once."""
WAVE: Final = 32
"""Endpoints called at once; each wave's results are saved together, and a stopping lane ends between waves."""
USER_AGENT: Final = "broadcaster-webhook/0.1 (+https://www.standardwebhooks.com/)"


def endpoint_key(url: str) -> str:
    """An endpoint's key in the delivery's progress: a digest, so no URL (a secret) is journaled there."""
    return "endpoint:" + endpoint_id(url)


class SubscribedEndpoints:
    def __init__(self, journal: JournalReader, *, allow_private: bool, scrub: Callable[[str], str]) -> None:
        self._journal = journal
        self._allow_private = allow_private
        self._scrub = scrub
        self._session: aiohttp.ClientSession | None = None

    async def send(self, job: Job, body: Callable[[float], bytes], msg_id: str) -> Receipt:
        """Deliver `body(sent_at)` to every endpoint following the incident; TransientError while any is
        still to be reached."""
        endpoints = await self._following(job)
        notes = dict(job.progress)
        todo = [s for s in endpoints if endpoint_key(s.address) not in notes]
        for start in range(0, len(todo), WAVE):
            if job.stop_requested():
                raise Interrupted(f"stopped with {len(todo) - start:,} subscriber endpoints not yet called")
            wave = todo[start : start + WAVE]
            results = await asyncio.gather(*(self._deliver(s, body, msg_id) for s in wave))
            reached = {endpoint_key(s.address): note for s, note in zip(wave, results, strict=True) if note is not None}
            await job.save_progress(reached)
            notes.update(reached)
        delivered = sum(1 for s in endpoints if notes.get(endpoint_key(s.address)) == "")
        refused = sum(1 for s in endpoints if notes.get(endpoint_key(s.address)))
        left = len(endpoints) - delivered - refused
        counts = f"{delivered:,} of {len(endpoints):,} subscriber endpoints delivered, {refused:,} refused"
        if left:
            raise TransientError(f"{left:,} not reached yet; {counts}")
        return Receipt(detail=counts)

    async def check(self) -> CheckResult:
        """How many endpoints are subscribed; none is called (they are customers', not ours to test)."""
        if not isinstance(self._journal, SubscriberReader):
            return CheckResult(target=SUBSCRIBERS_TARGET, ok=False, detail="this journal keeps no subscribers")
        try:
            count = len(await self._journal.subscribers("webhook"))
        except StoreError as exc:
            return CheckResult(
                target=SUBSCRIBERS_TARGET, ok=False, detail=f"cannot read the journal's subscribers: {exc}"
            )
        return CheckResult(target=SUBSCRIBERS_TARGET, ok=True, detail=f"{count:,} confirmed endpoints; none called")

    async def _following(self, job: Job) -> list[Subscriber]:
        if not isinstance(self._journal, SubscriberReader):
            return []
        try:
            everyone = await self._journal.subscribers("webhook")
        except StoreError as exc:
            raise TransientError(f"cannot read the journal's subscribers: {exc}") from None
        affected = {name.casefold() for name in job.incident.components}
        return [s for s in everyone if follows(s.followed, affected)]

    async def _deliver(self, subscriber: Subscriber, body: Callable[[float], bytes], msg_id: str) -> str | None:
        """ "" when delivered, the refusal when the endpoint refused for good, None to try again later."""
        try:
            await self.post(subscriber.address, subscriber.secret, body(time.time()), msg_id)
        except TransientError:
            return None
        except TargetGone as exc:  # 410: the endpoint asks to stop; it is unsubscribed, as a hard bounce is
            await self._unsubscribe(subscriber)
            return str(exc)
        except DeliveryError as exc:
            return str(exc) or "refused"
        return ""

    async def _unsubscribe(self, subscriber: Subscriber) -> None:
        if not isinstance(self._journal, SubscriberReader):
            return
        try:
            await self._journal.remove_subscriber("webhook", subscriber.address)
        except StoreError as exc:  # it stays subscribed: its next 410 tries again
            log.warning("a webhook endpoint that answered 410 could not be unsubscribed: %s", exc)

    async def post(self, url: str, secret: str, body: bytes, msg_id: str) -> bytes:
        """POST a signed `body` to a subscriber endpoint; its answer (capped) on a 2xx, else the classified
        error (PermanentError for an address that is not public)."""
        refusal = None if self._allow_private else host_refusal(URL(url).host or "")
        if refusal is not None:
            raise PermanentError(f"the endpoint's host is {refusal}")
        timestamp = int(time.time())
        headers = {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            **standard_headers(msg_id, timestamp, body, Signer(signing_key(secret)) if secret else None),
        }
        try:
            async with self._client().post(url, data=body, headers=headers, allow_redirects=False) as response:
                answer = await read_capped(response)
                status, reason = response.status, response.reason or ""
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            refused = getattr(exc, "os_error", None)
            if isinstance(refused, RefusedAddress):
                raise PermanentError(str(refused)) from None
            raise TransientError(self._scrub(describe_failure(exc, timeout=ENDPOINT_TIMEOUT, url=url))) from None
        raise_for_answer(status, reason, body=snippet(answer, scrub=partial(_without_url, url, self._scrub)))
        return answer

    async def ping(self, url: str, secret: str, code: str, *, page: Mapping[str, str]) -> bytes:
        """The signed ping that confirms a new endpoint: it carries `code`, which its owner enters on the
        subscribe page (or the endpoint answers with at once)."""
        sent_at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        body = {"meta": {"event": PING_EVENT, "update_id": None, "sent_at": sent_at}, "page": page}
        payload = json.dumps({**body, "confirmation_code": code}, separators=(",", ":")).encode()
        return await self.post(url, secret, payload, f"msg_ping_{hashlib.sha256(payload).hexdigest()[:20]}")

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # A customer's endpoint is reached as the world reaches it: no [network] pins (which could steer a
            # stranger's URL to one of ours) and the system's CAs, not the operator's ca_file.
            resolver: AbstractResolver = aiohttp.ThreadedResolver()
            if not self._allow_private:
                resolver = PublicOnlyResolver(resolver)
            connector = aiohttp.TCPConnector(limit=WAVE, ssl=ssl.create_default_context(), resolver=resolver)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=ENDPOINT_TIMEOUT), trust_env=False
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _without_url(url: str, scrub: Callable[[str], str], text: str) -> str:
    """An endpoint's answer as the ledger keeps it: scrubbed, and without the endpoint's own URL or path,
    which may carry a credential (an answer like "Cannot POST /hooks/<token>" quotes it)."""
    path = URL(url).raw_path_qs
    text = text.replace(url, "<endpoint>")
    if len(path) > 1:
        text = text.replace(path, "<path>")
    return scrub(text)
