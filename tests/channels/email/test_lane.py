"""The email channel run by the real lane (Dispatcher, SQLite journal, retry policy, TTL, attempt timeout)."""

from __future__ import annotations

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.runtime import open_runtime
from broadcaster.store.base import Delivery
from config import Settings
from tests.channels.email.conftest import Configure, Relay
from tests.channels.email.smtp_server import Script, smtp_server

PEOPLE = [f"member{n:02d}@example.org" for n in range(30)]
FAST_RETRY = "[retry.email]\nbase_delay = 0.05\nmax_delay = 0.1\nmax_attempts = 4\n"


async def post(settings: Settings, *drafts: UpdateDraft, wait: float = 30) -> list[Delivery]:
    """Submit the drafts one after another through the runtime, each settled before the next."""
    runtime = await open_runtime(settings)
    settled: list[Delivery] = []
    try:
        async with Dispatcher(runtime, channels=["email"], poll_interval=0.05) as dispatcher:
            incident_id = None
            for given in drafts:
                submitted = given
                if incident_id is not None:
                    submitted = given.model_copy(update={"title": None, "incident_id": incident_id})
                accepted = await runtime.submit(submitted)
                incident_id = accepted.incident.id
                dispatcher.wake()
                settled += await dispatcher.settle([accepted.update.id], wait=wait)
    finally:
        await runtime.close()
    return settled


def draft(status: str = "investigating", message: str = "Errors on the API.") -> UpdateDraft:
    return UpdateDraft(title="API errors", status=status, message=message, channels=["email"])


async def test_the_lane_delivers_an_update_to_every_subscriber(configure: Configure) -> None:
    """Delivered on the first attempt; the ledger has the counts and the Message-ID."""
    with smtp_server() as server:
        (delivery,) = await post(configure(Relay(server.port), subscribers=PEOPLE), draft())
    assert (delivery.state, delivery.attempts) == (DeliveryState.DELIVERED, 1)
    assert delivery.detail == "30 accepted, 0 refused of 30"
    assert delivery.external_id == f"<update.{delivery.update_id}@example.com>"
    assert sorted(r.recipients[0] for r in server.recorder.received) == PEOPLE


async def test_the_lane_retries_451s_and_a_dropped_connection_mailing_each_person_once(configure: Configure) -> None:
    """Attempt 1 leaves the 451s and the dropped message; attempt 2 mails exactly those."""
    script = Script(defer_once={PEOPLE[4]: "451 4.7.1 Later", PEOPLE[20]: "451 4.7.1 Later"}, drop_at_data={9})
    with smtp_server(script) as server:
        settings = configure(Relay(server.port), subscribers=PEOPLE, retry=FAST_RETRY)
        (delivery,) = await post(settings, draft())
    assert (delivery.state, delivery.attempts) == (DeliveryState.DELIVERED, 2)
    assert [len(server.recorder.messages_to(person)) for person in PEOPLE] == [1] * 30


async def test_a_later_update_threads_under_the_incident_s_first_message(configure: Configure) -> None:
    """Through the journal's own history: update 2 replies to update 1's Message-ID."""
    with smtp_server() as server:
        settings = configure(Relay(server.port), subscribers=PEOPLE[:2])
        first, second = await post(settings, draft(), draft("identified", "Found the faulty deploy."))
    assert (first.state, second.state) == (DeliveryState.DELIVERED, DeliveryState.DELIVERED)
    replies = [r.message for r in server.recorder.received if r.message["Message-ID"] == second.external_id]
    assert len(replies) == 2
    assert {(m["In-Reply-To"], m["References"]) for m in replies} == {(first.external_id, first.external_id)}
    assert {m["Subject"] for m in replies} == {"[Minor outage] API errors - Identified"}


async def test_nothing_is_mailed_after_the_time_to_live(configure: Configure) -> None:
    """A relay too slow for the TTL: the lane records the delivery expired and the rest are never mailed."""
    with smtp_server(Script(data_delay=0.05)) as server:
        settings = configure(
            Relay(server.port),
            subscribers=PEOPLE,
            email={"pool_size": 1},
            retry="[retry.email]\nttl = 0.5\nbase_delay = 0.05\n",
        )
        (delivery,) = await post(settings, draft())
    assert delivery.state is DeliveryState.EXPIRED
    assert 0 < len(server.recorder.received) < 30


async def test_progress_survives_an_attempt_cut_short_by_the_lane_timeout(configure: Configure) -> None:
    """Each attempt times out mid-batch; the next resumes. Only a message in flight at a cut may repeat. Attempts
    to spare: on a loaded machine an attempt may time out before its first message."""
    with smtp_server(Script(data_delay=0.02)) as server:
        settings = configure(
            Relay(server.port),
            subscribers=PEOPLE,
            email={"pool_size": 1},
            retry="[retry.email]\ntimeout = 0.25\nbase_delay = 0.01\nmax_delay = 0.02\nmax_attempts = 100\n",
        )
        (delivery,) = await post(settings, draft())
    assert delivery.state is DeliveryState.DELIVERED and delivery.attempts > 1
    per_person = [len(server.recorder.messages_to(person)) for person in PEOPLE]
    assert min(per_person) == 1
    assert sum(per_person) <= len(PEOPLE) + delivery.attempts - 1
