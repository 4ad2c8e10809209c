"""The channel contract: all the core knows about a channel.

A channel turns one job (an update for one target) into a Receipt, or raises a classified error:
TransientError (the lane retries with backoff, or after `retry_after` seconds) or PermanentError (the
lane records a failure and stops). Anything else escaping `send` is a bug in the channel; the lane
logs it and treats it as transient, so a poison delivery runs out of attempts instead of killing a worker.
Error messages are recorded in the ledger, so they must say what happened without any secret."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, Self, runtime_checkable

from broadcaster.domain.records import record
from broadcaster.domain.vocabulary import Ordering

__all__ = [
    "Channel",
    "ChannelContext",
    "CheckResult",
    "DeliveryError",
    "Interrupted",
    "Job",
    "JournalReader",
    "Ordering",
    "PermanentError",
    "Preview",
    "Previews",
    "Rebuilds",
    "Receipt",
    "SaveProgress",
    "TargetGone",
    "TransientError",
]

if TYPE_CHECKING:
    from broadcaster.domain.models import Incident, IncidentHistory, Update
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


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What a channel is built from."""

    settings: Settings
    journal: JournalReader


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
class Rebuilds(Protocol):
    """A channel that can rebuild everything it publishes from the journal alone (the mirror), for
    `broadcaster render`. The core asks for the capability, never for a channel class."""

    async def render_all(self) -> list[CheckResult]: ...


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
