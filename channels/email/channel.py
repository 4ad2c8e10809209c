"""The email channel: one update fanned out to every subscriber over SMTP (aiosmtplib).

One delivery per update (target "subscribers"); inside it, one message per recipient, rendered once and
personalised by two headers, sent over a pool of reused connections to the primary relay or, when it
refuses or cannot be reached, the fallback relays in order. Each recipient's result is saved to the journal
as it happens, so a retry resumes where the last attempt stopped; hard bounces join the suppression list.
The lane provides retries, timeouts, TTL and supersession; this channel only classifies what happened."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Self

from broadcaster.domain.models import Incident, Update
from broadcaster.domain.subscriptions import MANAGE_PATH
from channels.base import (
    Channel,
    ChannelContext,
    CheckResult,
    Interrupted,
    Job,
    JournalReader,
    PermanentError,
    Preview,
    Receipt,
    TransientError,
)
from channels.email.audience import Audience, Everyone
from channels.email.body import EmailContent, subject_line
from channels.email.fanout import REFUSAL_GUARD, Fanout, Outcome
from channels.email.message import ManageLinks, RenderedMessage, Unsubscribe, render_message
from channels.email.notes import compose_note, send_note
from channels.email.pool import ConnectionPool, Dialer, RelayError, close_quietly
from channels.email.progress import Progress, ProgressLog
from channels.email.subscribers import SubscriberFile
from channels.email.suppression import SuppressionList
from channels.subscriber_lists import SubscriberList, SubscribersUnavailable
from config.email import EmailSettings, RelaySettings
from config.keys import stored_secret
from config.sections import NetworkSettings

log = logging.getLogger("broadcaster.email")


class EmailChannel(Channel):
    """Mails each update to the subscribers it concerns. One instance per lane: it owns the connection
    pool (closed by aclose) and may run the lane's concurrent deliveries at once over that pool."""

    name = "email"

    def __init__(
        self,
        settings: EmailSettings,
        *,
        network: NetworkSettings,
        public_url: str,
        data_dir: Path,
        journal: JournalReader,
        unsubscribe_url: str = "",
        unsubscribe_secret: bytes | None = None,
        manage: ManageLinks | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not settings.from_addr:
            raise ValueError("[email] needs from_addr")
        self._settings = settings
        self._journal = journal
        self._public_url = public_url
        self._clock = clock
        listed = settings.subscribers_file
        self._subscribers = Everyone(
            SubscriberFile(listed, limit=settings.max_subscribers) if listed is not None else None, journal
        )
        self._suppressions = SuppressionList(settings.suppression_path(data_dir))
        self._unsubscribe = Unsubscribe(unsubscribe_url, unsubscribe_secret) if unsubscribe_url else None
        self._manage = manage
        self._dialer = Dialer(
            network,
            helo_name=settings.helo_name or settings.sender_domain,
            connect_timeout=settings.connect_timeout,
            command_timeout=settings.command_timeout,
        )
        self._pool = ConnectionPool(
            settings.relays(),
            self._dialer,
            size=settings.pool_size,
            idle_timeout=settings.idle_timeout,
            relay_cooldown=settings.relay_cooldown,
        )

    @classmethod
    def create(cls, context: ChannelContext) -> Self:
        """Unsubscribe links go to [email] unsubscribe_url, else to this service's /unsubscribe; with
        [service] public_url, every message also links to the service's page for managing a subscription.
        Links are signed with [email] unsubscribe_secret, else with a key generated once into the data
        directory (an unsigned link would let anyone unsubscribe anyone)."""
        settings = context.settings
        url = settings.unsubscribe_url
        service_url = settings.service.public_url
        configured = settings.email.unsubscribe_secret
        secret: bytes | None = None
        if configured is not None:
            secret = configured.get_secret_value().encode()
        elif url or service_url:
            secret = stored_secret(settings.service.data_dir, "unsubscribe")
        return cls(
            settings.email,
            network=settings.network,
            public_url=settings.mirror.public_url,
            data_dir=settings.service.data_dir,
            journal=context.journal,
            unsubscribe_url=url,
            unsubscribe_secret=secret,
            manage=ManageLinks(service_url + MANAGE_PATH, secret) if service_url and secret else None,
        )

    async def send(self, job: Job) -> Receipt:
        progress = Progress(job.progress)
        audience = await self._audience(job, progress)
        message = self.render(job)
        todo = [s.address for s in audience.recipients if not progress.done(s.key)]
        outcome = Outcome()
        if todo:
            outcome = await Fanout(
                recipients=todo,
                message=message,
                sender=self._settings.sender,
                pool=self._pool,
                workers=self._settings.pool_size,
                log=ProgressLog(progress, job.save_progress),
                suppressions=self._suppressions,
                expires_at=job.expires_at,
                stop_requested=job.stop_requested,
                stop_by=self._stop_by(job.deadline),
                clock=self._clock,
            ).run()
        return self._conclude(audience, progress, outcome, message)

    def _stop_by(self, deadline: float) -> float:
        """When to start no more transactions: a command timeout before the attempt's deadline (at most half
        the time left), so the last ones finish before the lane would cut them off."""
        margin = min(self._settings.command_timeout, max(0.0, deadline - self._clock()) / 2)
        return deadline - margin

    def preview(self, incident: Incident, update: Update) -> Preview:
        """The subject line every subscriber will see (the list itself is read only when sending)."""
        return Preview(text=subject_line(incident, update), note=f"subject line, from {self._settings.from_addr}")

    def render(self, job: Job) -> RenderedMessage:
        """The shared part of this update's email (public for tests and benchmarks)."""
        earlier = tuple(reversed([u for u in job.history if u.id != job.update.id]))
        content = EmailContent(
            incident=job.incident,
            update=job.update,
            earlier=earlier,
            incident_url=f"{self._public_url}/incidents/{job.incident.id}.html" if self._public_url else "",
            unsubscribe_url=self._unsubscribe.url if self._unsubscribe else "",
            sender_domain=self._settings.sender_domain,
        )
        first = job.history[0].id if job.history else job.update.id
        return render_message(
            content,
            from_addr=self._settings.from_addr,
            first_update_id=first,
            unsubscribe=self._unsubscribe,
            manage=self._manage,
        )

    async def _audience(self, job: Job, progress: Progress) -> Audience:
        try:
            listed = await self._subscribers.load()
            suppressed = await self._suppressions.load() | await self._journal.suppressed()
        except SubscribersUnavailable as exc:
            raise TransientError(str(exc)) from None
        except OSError as exc:
            raise TransientError(f"cannot read suppression file {self._suppressions.path}: {exc.strerror}") from None
        affected = {name.casefold() for name in job.incident.components}
        wanted = [s for s in listed.subscribers if s.wants(affected)]
        # Someone done by an earlier attempt of this delivery still counts, even if suppressed since.
        recipients = [s for s in wanted if progress.done(s.key) or s.key not in suppressed]
        return Audience(
            recipients=recipients,
            suppressed=len(wanted) - len(recipients),
            other_components=len(listed.subscribers) - len(wanted),
            bad_lines=len(listed.problems),
        )

    def _conclude(self, audience: Audience, progress: Progress, outcome: Outcome, message: RenderedMessage) -> Receipt:
        keys = [s.key for s in audience.recipients]
        accepted = sum(1 for key in keys if progress.accepted(key))
        refused = [reply for key in keys if (reply := progress.refusal(key)) is not None]
        total = len(keys)
        counts = f"{accepted:,} accepted, {len(refused):,} refused{_codes(refused)} of {total:,}"
        left = outcome.left
        if outcome.refused_by_relay:
            raise PermanentError(
                f"the relay refused {REFUSAL_GUARD} recipients in a row{_codes(refused)}: it is refusing us, "
                f"not them, so none of them was suppressed; {counts}"
            )
        if outcome.unsaved:
            raise TransientError(
                f"stopped with {len(left):,} not yet mailed: the journal cannot record who was mailed "
                f"({outcome.unsaved}), and mailing on without a record could mail them twice; {counts}"
            )
        if outcome.stopped:
            raise Interrupted(f"stopped with {len(left):,} not yet mailed; {counts}")
        if outcome.out_of_time:
            raise TransientError(f"the attempt's time ran out with {len(left):,} not yet mailed; {counts}")
        if outcome.expired:
            raise TransientError(f"time-to-live passed mid-batch with {len(left):,} not sent: {counts}")
        if left:
            failures = outcome.relay_failures
            if failures and all(f.permanent for f in failures) and outcome.accepted_now == 0:
                raise PermanentError(f"no relay would take the mail: {_unique(failures)}")
            relays = f"; relays: {_unique(failures)}" if failures else ""
            raise TransientError(
                f"{len(left):,} left for a later attempt ({_reasons(left.values())}); {counts}{relays}"
            )
        notes = [
            f"{audience.suppressed:,} suppressed" if audience.suppressed else "",
            f"{audience.other_components:,} follow other components" if audience.other_components else "",
            f"{audience.bad_lines:,} bad lines in the subscribers file" if audience.bad_lines else "",
        ]
        detail = "; ".join([counts, *filter(None, notes)])
        log.info("email: update delivered: %s", detail)
        return Receipt(detail=detail, external_id=message.message_id)

    async def check(self) -> list[CheckResult]:
        """Connect, EHLO, STARTTLS or TLS and AUTH against every relay, sending nothing; then read the
        subscribers file. One result per relay ("host:port"), and one for "subscribers"."""
        results = [await self._check_relay(relay) for relay in self._settings.relays()]
        try:
            listed = await self._subscribers.load()
            suppressed = await self._suppressions.load() | await self._journal.suppressed()
        except (SubscribersUnavailable, OSError) as exc:
            results.append(CheckResult(target="subscribers", ok=False, detail=str(exc)))
        else:
            results.append(CheckResult(target="subscribers", ok=True, detail=_list_summary(listed, suppressed)))
        return results

    async def _check_relay(self, relay: RelaySettings) -> CheckResult:
        try:
            smtp = await self._dialer.open(relay)
        except RelayError as exc:
            return CheckResult(target=relay.label, ok=False, detail=str(exc).removeprefix(f"{relay.label}: "))
        await close_quietly(smtp)
        steps = ["connected", "EHLO"]
        steps += {"starttls": ["STARTTLS"], "tls": ["TLS"], "none": []}[relay.security]
        steps += [f"AUTH as {relay.username}"] if relay.username else []
        return CheckResult(target=relay.label, ok=True, detail=", ".join(steps) + " accepted; nothing sent")

    async def send_note(self, address: str, subject: str, text: str) -> None:
        """One message to one address (a subscription's confirmation), through the update's relays."""
        settings = self._settings
        message = compose_note(
            from_addr=settings.from_addr, to=address, subject=subject, text=text, domain=settings.sender_domain
        )
        await send_note(self._pool, sender=settings.sender, to=address, message=message)

    async def aclose(self) -> None:
        await self._pool.aclose()


def _codes(reasons: list[str]) -> str:
    codes = sorted({reason[:3] for reason in reasons if reason[:3].isdigit()})
    return f" ({', '.join(codes)})" if codes else ""


def _reasons(reasons: Iterable[str]) -> str:
    """ "451 x 3, connection lost x 1": the commonest reasons, by reply code where there is one."""
    counted = Counter(reason[:3] if reason[:3].isdigit() else reason.partition(" (")[0] for reason in reasons)
    return ", ".join(f"{reason} x {count:,}" for reason, count in counted.most_common(3))


def _unique(failures: Iterable[RelayError]) -> str:
    return "; ".join(dict.fromkeys(str(failure) for failure in failures))


def _list_summary(listed: SubscriberList, suppressed: frozenset[str]) -> str:
    active = sum(1 for s in listed.subscribers if s.key not in suppressed)
    summary = f"{active:,} subscribers ({len(listed.subscribers) - active:,} suppressed)"
    if listed.problems:
        summary += f"; {len(listed.problems):,} bad lines, first {listed.problems[0]}"
    return summary
