"""The X channel: every incident update becomes a post, and every later update of an incident replies to
the incident's previous post, so followers read an incident as one thread.

The lane hands each job the id of the incident's last delivered post (`Job.thread_parent`, kept in the
journal from our receipts). A post is at-least-once: before posting, the text's digest is checkpointed,
so when an answer is lost (a timeout, a crash) and the retry meets X's "duplicate content" refusal, the
refusal is recognised as our own earlier post and counted as delivered. After posting, the post id is
checkpointed too, so a retry after a crash returns it without posting again.

Errors: 429 waits for X's rate-limit reset (the lane expires the delivery when that falls after its
time-to-live); 5xx, timeouts and network errors are transient; 401, 403 and other refusals are permanent
and record X's reason."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final, Self

from broadcaster.domain.errors import StoreError
from broadcaster.domain.models import Incident, Update
from broadcaster.domain.vocabulary import Impact
from channels.base import (
    Channel,
    ChannelContext,
    CheckResult,
    DeliveryError,
    Job,
    PermanentError,
    Preview,
    Receipt,
    TransientError,
)
from channels.x.api import ApiAnswer, XApi, XApiError, quota_note, rate_limit_wait
from channels.x.text import MAX_WEIGHT, PostText, compose_post, incident_link

log = logging.getLogger("broadcaster.x")

TARGET: Final = "x"
LOW_QUOTA: Final = 5
"""At or below this many posts left in a 24-hour quota, every post logs a warning."""
_TRANSIENT_STATUSES: Final = frozenset({408, 420, 429})


class XChannel(Channel):
    """Posts to one X account (the single target "x") with OAuth 1.0a user-context credentials."""

    name = "x"

    def __init__(self, api: XApi, *, public_url: str, always_link: bool) -> None:
        self._api = api
        self._public_url = public_url
        self._always_link = always_link

    @classmethod
    def create(cls, context: ChannelContext) -> Self:
        settings = context.settings
        api = XApi(settings.x, settings.network, connections=settings.lane_policy(cls.name).concurrency)
        return cls(api, public_url=settings.mirror.public_url, always_link=settings.x.always_link)

    def compose(self, job: Job) -> PostText:
        return self.compose_update(job.incident, job.update)

    def compose_update(self, incident: Incident, update: Update) -> PostText:
        """The post for an update: status and impact (none once resolved), the incident's name, the message,
        and the link to the incident's page when shortened or configured."""
        impact = None if update.status.is_final or update.impact is Impact.NONE else update.impact.label
        return compose_post(
            status=update.status.label,
            impact=impact,
            title=incident.name,
            message=update.message,
            link=incident_link(self._public_url, incident.id),
            always_link=self._always_link,
        )

    def preview(self, incident: Incident, update: Update) -> Preview:
        """The post exactly as `send` would compose it, and its weight against X's limit."""
        post = self.compose_update(incident, update)
        note = f"{post.weight} of {MAX_WEIGHT} weighted characters"
        if post.shortened:
            note += "; the message was shortened to fit, with a link to the incident's page"
        return Preview(text=post.text, note=note)

    async def send(self, job: Job) -> Receipt:
        """Post the update (as a reply to `job.thread_parent` when there is one); the receipt's external_id
        is the new post's id. Raises TransientError or PermanentError (see `classify`)."""
        text = self.compose(job).text
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        tried_before = job.progress.get("text") == digest
        if tried_before and (post_id := job.progress.get("post_id")):
            return Receipt(f"already posted as {post_id} by an earlier attempt", external_id=str(post_id))
        if not tried_before:
            await _checkpoint(job, {"text": digest}, required=True)
        try:
            answer, parent = await self._post(text, job.thread_parent)
        except XApiError as exc:
            if exc.duplicate and tried_before:
                return Receipt("X already has this post: an earlier attempt posted it but its answer was lost")
            raise classify(exc) from None
        post_id = str(answer.data.get("id") or "") or None
        if post_id is not None:
            await _checkpoint(job, {"text": digest, "post_id": post_id}, required=False)
        _warn_when_quota_runs_low(answer.headers)
        return Receipt(_describe(post_id, parent, job.thread_parent, answer.headers), external_id=post_id)

    async def check(self) -> list[CheckResult]:
        """GET /2/users/me with the configured credentials: proves they work, posts nothing."""
        try:
            answer = await self._api.me()
        except XApiError as exc:
            return [CheckResult(target=TARGET, ok=False, detail=str(classify(exc)))]
        username = answer.data.get("username")
        return [CheckResult(target=TARGET, ok=True, detail=f"@{username}" if username else "credentials accepted")]

    async def aclose(self) -> None:
        """Close the lane's HTTP session (if a call ever opened it)."""
        await self._api.aclose()

    async def _post(self, text: str, parent: str | None) -> tuple[ApiAnswer, str | None]:
        try:
            return await self._api.create_post(text, reply_to=parent), parent
        except XApiError as exc:
            if parent is None or not exc.reply_target_gone:
                raise
        # Someone deleted the incident's previous post: better a post outside the thread than none.
        log.warning("x: post %s, which this update would reply to, is gone; posting outside the thread", parent)
        return await self._api.create_post(text, reply_to=None), None


def _describe(post_id: str | None, parent: str | None, wanted: str | None, headers: Mapping[str, str]) -> str:
    what = f"posted {post_id}" if post_id else "posted (X named no post id)"
    if parent:
        what += f" in reply to {parent}"
    elif wanted:
        what += f" outside the thread ({wanted} is gone)"
    quota = quota_note(headers)
    return f"{what}; {quota}" if quota else what


def _warn_when_quota_runs_low(headers: Mapping[str, str]) -> None:
    for who in ("app", "user"):
        remaining = headers.get(f"x-{who}-limit-24hour-remaining", "")
        if remaining.isdigit() and int(remaining) <= LOW_QUOTA:
            log.warning("x: only %s posts left in the %s's 24-hour quota", remaining, who)


def classify(exc: XApiError) -> DeliveryError:
    """The lane's verdict on a failed call: transient (no answer, 5xx, 408, 420, 429 with the wait X asked
    for, in seconds) or permanent (401, 403 and every other refusal), with X's reason."""
    if exc.status is None or exc.status >= 500 or exc.status in _TRANSIENT_STATUSES:
        if exc.status != 429:
            return TransientError(exc.reason)
        moment = time.time()
        wait = rate_limit_wait(exc.headers, moment)
        if wait is None:
            return TransientError(f"{exc.reason}; X gave no reset time")
        until = datetime.fromtimestamp(moment + wait, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return TransientError(f"{exc.reason}; rate limited until {until}", retry_after=wait)
    if exc.duplicate:
        return PermanentError(f"{exc.reason} (an earlier post of this account has exactly this text)")
    if exc.status == 401:
        return PermanentError(f"{exc.reason} (check the [x] credentials and the app's permissions)")
    return PermanentError(exc.reason)


async def _checkpoint(job: Job, progress: dict[str, str], *, required: bool) -> None:
    try:
        await job.save_progress(progress)
    except StoreError as exc:
        if required:
            # Posting without the marker would turn a lost answer into a permanent "duplicate" failure.
            raise TransientError(f"cannot record the attempt in the journal: {exc}") from None
        log.warning("x: posted, but cannot record the post id yet: %s", exc)
