"""The channel contract: all the core knows about a channel.

A channel turns one job (an update for one target) into a Receipt, or raises a classified error:
TransientError (the lane retries with backoff, or after `retry_after` seconds) or PermanentError (the
lane records a failure and stops). Anything else escaping `send` is a bug in the channel; the lane
logs it and treats it as transient, so a poison delivery runs out of attempts instead of killing a worker.
Error messages are recorded in the ledger, so they must say what happened without any secret."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, Self, runtime_checkable

from broadcaster.domain.records import record
from broadcaster.domain.vocabulary import Ordering

__all__ = [
    "Channel",
    "ChannelContext",
    "CheckResult",
    "ConfirmsEndpoints",
    "DeliveryError",
    "Interrupted",
    "Job",
    "JournalReader",
    "Ordering",
    "PermanentError",
    "Preview",
    "Previews",
    "PublishManifests",
    "Rebuilds",
    "Receipt",
    "SaveProgress",
    "SendsNotes",
    "SiteReader",
    "SubscriberReader",
    "TargetGone",
    "TransientError",
]

if TYPE_CHECKING:
    from datetime import datetime

    from broadcaster.domain.models import Incident, IncidentHistory, Update
    from broadcaster.domain.statuspage import IncidentSummary
    from broadcaster.domain.subscriptions import Subscriber, SubscriberKind
    from broadcaster.domain.uptime import ComponentUpdate
    from config import Settings


@record
class Receipt:
    """Proof of delivery: a short human detail, and the channel's id for what it created (a post id, a
    Message-ID), which later updates of the same incident receive as `Job.thread_parent`."""

    detail: str = ""
    external_id: str | None = None


class DeliveryError(Exception):
    """A classified delivery failure. The message is recorded in the ledger and shown to people."""


class TransientError(DeliveryError):
    """Worth retrying. `retry_after` (seconds) overrides the backoff when the far end said when."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """Retrying cannot help (rejected credentials, a refused payload)."""


class Interrupted(DeliveryError):
    """The attempt stopped early, at a safe point, because its lane is stopping (`Job.stop_requested`):
    what it did is saved through `Job.save_progress`, and the delivery goes back to the queue without the
    attempt counting against it."""


class TargetGone(PermanentError):
    """The target itself is gone (HTTP 410): the delivery fails and the lane pauses the target, so later
    updates wait for someone to fix it and `broadcaster resume CHANNEL --target NAME`."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One preflight result: `target` is reachable and usable (ok), or `detail` says why not."""

    target: str
    ok: bool
    detail: str


SaveProgress = Callable[[Mapping[str, str]], Awaitable[None]]


@record
class Job:
    """One delivery attempt: an update for one target of one channel."""

    delivery_id: str
    """Stable across retries: use it as the idempotency key where the channel has one."""
    channel: str
    target: str
    attempt: int
    """1 for the first attempt."""
    max_attempts: int
    expires_at: float
    """Epoch seconds after which this update must not be delivered."""
    incident: Incident
    """The incident as it stood right after this update."""
    update: Update
    history: tuple[Update, ...]
    """The incident's updates up to and including this one, oldest first."""
    thread_parent: str | None
    """The external_id of the last delivered update of this incident on this target, if any."""
    progress: Mapping[str, str]
    """What earlier attempts saved through `save_progress` (empty on a first attempt)."""
    save_progress: SaveProgress
    """Add entries (key -> value) to the delivery's progress, so a retry resumes rather than repeats; saved
    for good (through a process crash) when it returns. An empty value marks a step that went through (a
    recipient accepted): those are forgotten once the delivery is over. Others (a refusal and its reason, an
    id a retry needs) are kept."""
    stop_requested: Callable[[], bool]
    """True once the lane is stopping: a long attempt (a fan-out) ends after the step in hand, with its
    progress saved, by raising Interrupted. A short one just finishes."""
    deadline: float = float("inf")
    """Epoch seconds at which the lane abandons this attempt (its timeout): a long attempt ends at a safe
    point before it, rather than be cut off mid-step."""


class JournalReader(Protocol):
    """The part of the journal a channel may read (the mirror renders from it; email skips suppressed
    addresses)."""

    async def site_history(self, *, recent: int | None) -> list[IncidentHistory]:
        """Every open incident plus the `recent` most recently updated ones (None: all), with updates."""
        ...

    async def suppressed(self) -> frozenset[str]:
        """Addresses never to mail again (one-click unsubscribes), lower-cased."""
        ...


@runtime_checkable
class SiteReader(JournalReader, Protocol):
    """The reads the status site is rendered from, each bounded by what one page needs rather than by the
    journal's whole history. Every store has them; the mirror asks its journal for the capability (other
    channels' readers need not have them)."""

    async def history(self, incident_id: str) -> IncidentHistory:
        """One incident with all its updates (NotFoundError if there is none)."""
        ...

    async def incident_summaries(self) -> list[IncidentSummary]:
        """Every incident and maintenance, without updates (the history page), in no particular order."""
        ...

    async def component_updates(self, *, since: datetime) -> list[ComponentUpdate]:
        """Every update, without its message, of each incident open at `since` or updated since (what the
        components' uptime from `since` on is replayed from), in no particular order."""
        ...


@runtime_checkable
class PublishManifests(Protocol):
    """The part of the journal that remembers, per publish target, what the remote holds (path -> content
    hash) after its last publish: the mirror then sends only what changed. Every store has it; a channel asks
    its journal for the capability."""

    async def publish_manifest(self, target: str) -> Mapping[str, str] | None:
        """What `target` was last published with; None if it never was (or the journal forgot)."""
        ...

    async def save_publish_manifest(self, target: str, manifest: Mapping[str, str]) -> None:
        """Replace `target`'s manifest, durably."""
        ...


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What a channel is built from. `drill`: the update is a drill (`broadcaster drill`), sent to drill
    targets only; a channel whose payload has a place for it says so (the webhook envelope's meta.drill)."""

    settings: Settings
    journal: JournalReader
    drill: bool = False


class Channel(ABC):
    """A delivery channel. One instance serves one lane: it owns its connections (opened lazily or in
    `create`, closed in `aclose`) and may be called concurrently up to the lane's concurrency."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def create(cls, context: ChannelContext) -> Self:
        """Build the channel from validated settings. Must not do network I/O."""

    @abstractmethod
    async def send(self, job: Job) -> Receipt:
        """Deliver `job` or raise TransientError / PermanentError."""

    @abstractmethod
    async def check(self) -> list[CheckResult]:
        """Preflight every target without messaging anyone."""

    async def aclose(self) -> None:  # noqa: B027 - most channels hold something to close; some do not
        """Release connections and threads."""


@runtime_checkable
class SubscriberReader(Protocol):
    """The journal's confirmed subscribers (who subscribed themselves, or whom an operator added), read
    beside the subscribers file, and ended when their endpoint says it is gone (HTTP 410). Every store has
    it; a channel asks its journal for the capability."""

    async def subscribers(self, kind: SubscriberKind) -> list[Subscriber]: ...

    async def remove_subscriber(self, kind: SubscriberKind, address: str) -> bool: ...


@runtime_checkable
class SendsNotes(Protocol):
    """A channel that can send one short message to one address outside any update (a subscription's
    confirmation link). The core asks for the capability, never for a channel class."""

    async def send_note(self, address: str, subject: str, text: str) -> None:
        """Raises TransientError or PermanentError, as `send` does."""
        ...


@runtime_checkable
class ConfirmsEndpoints(Protocol):
    """A channel that can send a would-be subscriber's endpoint the signed ping that confirms it: the ping
    carries `code`, which the endpoint's owner enters on the subscribe page, or the endpoint answers with.
    The core asks for the capability, never for a channel class."""

    async def ping_endpoint(self, url: str, secret: str, code: str) -> bytes:
        """The endpoint's answer (capped) to a 2xx; TransientError or PermanentError otherwise."""
        ...


@runtime_checkable
class Rebuilds(Protocol):
    """A channel that can rebuild everything it publishes from the journal alone (the mirror), for
    `broadcaster render` and for `serve` keeping this host's copy current. The core asks for the
    capability, never for a channel class."""

    async def render_all(self, *, paused: Collection[str] = ()) -> list[CheckResult]:
        """Rebuild into every target but the `paused` ones; one result per target."""
        ...

    async def render_here(
        self, incident_ids: Collection[str] | None, *, paused: Collection[str] = ()
    ) -> list[CheckResult]:
        """Render into this host's own targets (not those every instance shares) but the `paused` ones what the
        latest updates of `incident_ids` change, or everything when None; one result per target. For
        instances on a shared journal, whose deliveries are made by whichever instance claims them."""
        ...


@record
class Preview:
    """What a channel would send for an update, shown on the commander's form before anything is sent."""

    text: str
    """As it would go out: a post's text, an email's subject line, a webhook's event."""
    note: str = ""
    """What to know about it: a post's weighted length, which formats go to how many targets."""


@runtime_checkable
class Previews(Protocol):
    """A channel that can say what it would send for an update without sending it. Like `create`, it must
    not do network I/O: the form asks every chosen channel on each preview. The core asks for the
    capability, never for a channel class."""

    def preview(self, incident: Incident, update: Update) -> Preview: ...
