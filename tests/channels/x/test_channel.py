"""XChannel driving tweepy's real AsyncClient against the fake X API over HTTPS (pinned address, test CA)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from broadcaster.domain.vocabulary import Impact, Status
from channels.base import PermanentError, TransientError
from channels.x import XChannel
from tests.channels.x.fake_x import (
    HANDLE,
    ME_ROUTE,
    POST_ROUTE,
    SECRETS,
    FakeX,
    accept_without_json,
    hang,
    html_bad_gateway,
    lose_answer,
    rate_limited,
    status,
)
from tests.channels.x.jobs import INCIDENT_ID, PUBLIC_URL, Saved, make_job


def assert_no_credential(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


async def test_a_first_update_is_a_standalone_post(channel: XChannel, fake: FakeX) -> None:
    """The post leads with status and impact, replies to nothing, and the receipt names the post and quota."""
    receipt = await channel.send(make_job(message="Error rates are elevated on the public API."))
    (post,) = fake.posts
    assert post.text == "Investigating - Major outage: API errors\n\nError rates are elevated on the public API."
    assert post.reply_to is None
    assert receipt.external_id == post.id
    assert receipt.detail == f"posted {post.id}; 24h quota left: app 1499, user 99"
    assert fake.auth_failures == []


async def test_a_later_update_replies_to_the_thread_parent(channel: XChannel, fake: FakeX) -> None:
    """With a thread parent the post is a reply to it, and the receipt says so."""
    first = await channel.send(make_job())
    receipt = await channel.send(
        make_job(seq=2, status=Status.IDENTIFIED, message="Cause found.", thread_parent=first.external_id)
    )
    assert [post.reply_to for post in fake.posts] == [None, first.external_id]
    assert receipt.detail.startswith(f"posted {receipt.external_id} in reply to {first.external_id};")


async def test_resolved_posts_drop_the_impact_and_a_long_one_links_the_page(channel: XChannel, fake: FakeX) -> None:
    """ "Resolved: <title>", and a message too long for 280 is shortened and ends with the incident page."""
    await channel.send(make_job(status=Status.RESOLVED, impact=Impact.MAJOR, message="All clear. " * 40))
    (post,) = fake.posts
    assert post.text.startswith("Resolved: API errors\n\nAll clear. All clear.")
    assert post.text.endswith(f"\u2026\n\n{PUBLIC_URL}/incidents/{INCIDENT_ID}.html")


async def test_an_accepted_post_without_json_is_delivered_without_id(channel: XChannel, fake: FakeX) -> None:
    """201 with an unreadable body: X said yes, so it is delivered, and the receipt says no id came."""
    fake.script(POST_ROUTE, accept_without_json())
    receipt = await channel.send(make_job())
    assert (receipt.external_id, receipt.detail) == (None, "posted (X named no post id)")
    assert len(fake.posts) == 1


async def test_a_low_daily_quota_is_logged(channel: XChannel, fake: FakeX, caplog: pytest.LogCaptureFixture) -> None:
    """With 2 posts left in the user's 24-hour quota after a post, a warning says so."""
    fake.user_day_quota = 3
    with caplog.at_level(logging.WARNING, logger="broadcaster.x"):
        receipt = await channel.send(make_job())
    assert receipt.detail.endswith("24h quota left: app 1499, user 2")
    assert caplog.messages == ["x: only 2 posts left in the user's 24-hour quota"]


async def test_one_connection_serves_every_post(channel: XChannel, fake: FakeX) -> None:
    """tweepy uses the channel's session (client.session), so three posts and a check share one connection."""
    for seq in (1, 2, 3):
        await channel.send(make_job(seq=seq, message=f"Update number {seq}."))
    await channel.check()
    assert len(fake.requests) == 4
    assert len({request.connection for request in fake.requests}) == 1


async def test_server_errors_are_transient(channel: XChannel, fake: FakeX) -> None:
    """503 with JSON and 502 with an HTML page (tweepy's ContentTypeError) are both worth retrying."""
    fake.script(POST_ROUTE, status(503, "Service Unavailable", "Service Unavailable"), html_bad_gateway())
    with pytest.raises(TransientError) as unavailable:
        await channel.send(make_job())
    with pytest.raises(TransientError) as bad_gateway:
        await channel.send(make_job())
    assert (str(unavailable.value), unavailable.value.retry_after) == ("X API 503 Service Unavailable", None)
    assert str(bad_gateway.value) == "X API 502: answer is not JSON (text/html; charset=utf-8)"
    assert not fake.posts


async def test_a_rate_limit_asks_to_wait_until_the_reset(channel: XChannel, fake: FakeX) -> None:
    """429: retry_after reaches past x-rate-limit-reset (plus X's one-second rounding), not earlier."""
    reset = time.time() + 120
    fake.script(POST_ROUTE, rate_limited(reset))
    before = time.time()
    with pytest.raises(TransientError) as raised:
        await channel.send(make_job())
    retry_after = raised.value.retry_after
    assert retry_after is not None
    assert reset <= before + retry_after <= int(reset + 0.999) + 1
    assert "X API 429 Too Many Requests; rate limited until" in str(raised.value)


async def test_an_exhausted_daily_quota_waits_for_its_own_reset(channel: XChannel, fake: FakeX) -> None:
    """When the user's 24-hour quota is the exhausted limit, the wait runs to its reset, hours away."""
    reset = time.time() + 6 * 3600
    fake.script(POST_ROUTE, rate_limited(reset, family="x-user-limit-24hour"))
    with pytest.raises(TransientError) as raised:
        await channel.send(make_job())
    assert raised.value.retry_after is not None
    assert raised.value.retry_after >= reset - time.time()


async def test_rejected_credentials_fail_permanently_without_leaking_them(
    channel_for: Callable[..., XChannel], fake: FakeX, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong consumer secret: X's 401 (the fake checks the signature) is permanent, with the reason and
    no credential in the error or in any log line, even at DEBUG."""
    caplog.set_level(logging.DEBUG)
    channel = channel_for(x={"consumer_secret": "not-the-right-secret"})
    with pytest.raises(PermanentError) as raised:
        await channel.send(make_job())
    message = str(raised.value)
    assert message == "X API 401 Unauthorized (check the [x] credentials and the app's permissions)"
    assert fake.auth_failures == ["signature does not match"]
    assert_no_credential(message, caplog.text)
    assert "not-the-right-secret" not in message + caplog.text


async def test_a_forbidden_post_fails_permanently_with_x_s_reason(channel: XChannel, fake: FakeX) -> None:
    """403 (not a duplicate): permanent, recording what X said."""
    fake.script(POST_ROUTE, status(403, "Forbidden", "You are not permitted to perform this action."))
    with pytest.raises(PermanentError) as raised:
        await channel.send(make_job())
    assert str(raised.value) == "X API 403 Forbidden: You are not permitted to perform this action."


async def test_a_lost_answer_then_duplicate_counts_as_delivered(channel: XChannel, fake: FakeX) -> None:
    """X posts but the answer is lost; the retry meets "duplicate content": delivered, posted once."""
    saved = Saved()
    fake.script(POST_ROUTE, lose_answer())
    with pytest.raises(TransientError, match="cannot reach the X API"):
        await channel.send(make_job(saved=saved))
    receipt = await channel.send(make_job(saved=saved, attempt=2))
    assert receipt.external_id is None
    assert receipt.detail == "X already has this post: an earlier attempt posted it but its answer was lost"
    assert len(fake.posts) == 1
    assert len([r for r in fake.requests if r.route == POST_ROUTE]) == 2


async def test_a_duplicate_of_another_update_fails_permanently(channel: XChannel, fake: FakeX) -> None:
    """A first attempt meeting "duplicate content" did not post it: an earlier update had the same text."""
    await channel.send(make_job(seq=1, message="Still investigating."))
    with pytest.raises(
        PermanentError, match=r"duplicate content\. \(an earlier post of this account has exactly this text\)"
    ):
        await channel.send(make_job(seq=2, message="Still investigating."))
    assert len(fake.posts) == 1


async def test_a_retry_after_a_recorded_post_does_not_post_again(channel: XChannel, fake: FakeX) -> None:
    """The post id checkpointed after posting is returned by a retry (a crash before the outcome was
    recorded) without calling X."""
    saved = Saved()
    first = await channel.send(make_job(saved=saved))
    requests = len(fake.requests)
    again = await channel.send(make_job(saved=saved, attempt=2))
    assert again.external_id == first.external_id
    assert again.detail == f"already posted as {first.external_id} by an earlier attempt"
    assert len(fake.requests) == requests


async def test_a_deleted_thread_parent_gives_a_standalone_post(channel: XChannel, fake: FakeX) -> None:
    """If the incident's previous post was deleted, X refuses the reply; the update is posted on its own."""
    first = await channel.send(make_job())
    assert first.external_id is not None
    fake.deleted.add(first.external_id)
    receipt = await channel.send(make_job(seq=2, message="Cause found.", thread_parent=first.external_id))
    assert [post.reply_to for post in fake.posts] == [None, None]
    assert f"outside the thread ({first.external_id} is gone)" in receipt.detail


async def test_a_hanging_api_times_out_as_transient(channel_for: Callable[..., XChannel], fake: FakeX) -> None:
    """No answer within [x] request_timeout: a transient error saying so."""
    channel = channel_for(x={"request_timeout": 0.5, "connect_timeout": 0.5})
    fake.script(POST_ROUTE, hang())
    with pytest.raises(TransientError) as raised:
        await channel.send(make_job())
    assert str(raised.value) == "X API did not answer within 0.5s"
    assert fake.held == 1


async def test_check_names_the_account_and_posts_nothing(channel: XChannel, fake: FakeX) -> None:
    """check() reads /2/users/me: ok with the @handle, and no post is made."""
    (result,) = await channel.check()
    assert (result.target, result.ok, result.detail) == ("x", True, f"@{HANDLE}")
    assert not fake.posts
    assert [request.route for request in fake.requests] == [ME_ROUTE]


async def test_check_reports_rejected_credentials(channel_for: Callable[..., XChannel], fake: FakeX) -> None:
    """With a wrong access token secret check() fails with X's 401 reason, and no credential in it."""
    channel = channel_for(x={"access_token_secret": "wrong-token-secret"})
    (result,) = await channel.check()
    assert not result.ok
    assert result.detail.startswith("X API 401 Unauthorized")
    assert_no_credential(result.detail)
    assert "wrong-token-secret" not in result.detail
