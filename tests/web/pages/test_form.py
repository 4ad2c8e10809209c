"""The commander form over HTTP: CSRF required on every post, an update journaled with its author through
the API's validation, errors beside their fields with what was typed kept, previews of every channel,
templates, overdue incidents and one update per form however often it is sent."""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from html import escape, unescape
from pathlib import Path
from typing import Any

from broadcaster.domain.drafts import SAME_UPDATE_WITHIN
from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.vocabulary import Status
from broadcaster.web.auth.gate import Session
from channels.x.text import compose_post, weighted_length
from tests.web.pages.conftest import OTHER_CHANNELS, USER, Commander, OpenCommander

UPDATE = {
    "incident": "new",
    "title": "Checkout errors",
    "status": "investigating",
    "impact": "",
    "component_name": "Checkout",
    "component_state": "partial_outage",
    "message": "Some card payments fail.",
    "next_update": "30m",
    "channel": ["scripted", "mirror"],
}


def form_data(fields: dict[str, Any]) -> list[tuple[str, str]]:
    """Fields as a browser posts them: a list field as repeated names."""
    data = []
    for name, value in fields.items():
        data += [(name, item) for item in value] if isinstance(value, list) else [(name, value)]
    return data


def journaled(workdir: Path) -> list[tuple[str, str]]:
    """(author, message) of every update, read by another connection, as another process would."""
    with sqlite3.connect(workdir / "var" / "broadcaster.db") as journal:
        return journal.execute("SELECT author, message FROM updates ORDER BY created_at").fetchall()


def field_error(html: str, field: str) -> str:
    """The error shown beside a field, which the field names in its aria-describedby."""
    match = re.search(rf'<p class="error" id="{field}-error">(.*?)</p>', html, re.S)
    assert match, f"no error beside {field}"
    return unescape(match.group(1))


async def test_the_form_needs_a_session(commander: Commander) -> None:
    answer = await commander.client.get("/", allow_redirects=False)
    assert (answer.status, answer.headers["Location"]) == (303, "/login?next=/")
    posted = await commander.client.post("/", data=form_data({**UPDATE, "action": "send"}), allow_redirects=False)
    assert posted.status == 303
    assert await commander.runtime.store.incidents() == []


async def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_and_nothing_is_journaled(
    commander: Commander, workdir: Path
) -> None:
    await commander.log_in()
    tokens = await commander.form_tokens()
    other_session = commander.gate.csrf_token(Session(user=USER, id="another-session"))
    for csrf in (None, "", "not-a-token", other_session):
        fields = {**UPDATE, "action": "send", "form_key": tokens["form_key"]}
        if csrf is not None:
            fields["csrf"] = csrf
        refused = await commander.client.post("/", data=form_data(fields), allow_redirects=False)
        assert refused.status == 403
        assert "This form has expired" in await refused.text()
    assert journaled(workdir) == []


async def test_sending_journals_the_update_as_the_signed_in_user_and_shows_its_ledger(
    commander: Commander, workdir: Path
) -> None:
    await commander.log_in()
    tokens = await commander.form_tokens()
    before = datetime.now(UTC)
    sent = await commander.client.post(
        "/", data=form_data({**UPDATE, **tokens, "action": "send"}), allow_redirects=False
    )
    assert sent.status == 303
    update_id = sent.headers["Location"].removeprefix("/updates/")
    update = await commander.runtime.store.update(update_id)
    assert (update.author, update.message, update.status) == (USER, "Some card payments fail.", "investigating")
    assert [(c.name, c.new) for c in update.components] == [("Checkout", "partial_outage")]
    assert update.next_update_at is not None
    assert timedelta(minutes=29) < update.next_update_at - before < timedelta(minutes=31)
    deliveries = await commander.runtime.store.deliveries(update_id=update_id)
    assert sorted((d.channel, d.target) for d in deliveries) == [
        ("mirror", "public"),
        ("scripted", "a"),
        ("scripted", "b"),
    ]
    assert journaled(workdir) == [(USER, "Some card payments fail.")]
    ledger = await commander.client.get(sent.headers["Location"])
    assert ledger.status == 200
    assert "Checkout errors" in await ledger.text()


async def test_the_same_form_sent_twice_makes_one_update(commander: Commander, workdir: Path) -> None:
    await commander.log_in()
    fields = form_data({**UPDATE, **await commander.form_tokens(), "action": "send"})
    first = await commander.client.post("/", data=fields, allow_redirects=False)
    again = await commander.client.post("/", data=fields, allow_redirects=False)
    assert again.headers["Location"].startswith(first.headers["Location"] + "?posted=")
    assert len(journaled(workdir)) == 1
    edited = [(name, "Edited after sending." if name == "message" else value) for name, value in fields]
    conflict = await commander.client.post("/", data=edited, allow_redirects=False)
    assert conflict.status == 409
    assert "already sent with other content" in await conflict.text()
    assert len(journaled(workdir)) == 1


async def test_two_commanders_sending_the_same_update_at_once_make_one(commander: Commander, workdir: Path) -> None:
    """Two forms (two keys) with the same content (but for white space) within the minute: one update, and
    the second commander is told it was posted already, and by whom. A minute later the same words post again."""
    await commander.log_in()
    mine = form_data({**UPDATE, **await commander.form_tokens(), "action": "send"})
    theirs = form_data(
        {**UPDATE, **await commander.form_tokens(), "message": "Some  card payments fail. ", "action": "send"}
    )
    first = await commander.client.post("/", data=mine, allow_redirects=False)
    second = await commander.client.post("/", data=theirs, allow_redirects=False)
    assert second.headers["Location"].startswith(first.headers["Location"] + "?posted=")
    assert len(journaled(workdir)) == 1
    ledger = await (await commander.client.get(second.headers["Location"])).text()
    assert "This update had already been posted" in ledger
    assert f"(by {USER}," in ledger
    forged = await (await commander.client.get(first.headers["Location"] + "?posted=before")).text()
    assert "This update had already been posted" not in forged  # only the service's own stamp says so
    commander.runtime.clock = lambda: time.time() + SAME_UPDATE_WITHIN + 1  # a minute on, the same words again
    later = form_data({**UPDATE, **await commander.form_tokens(), "action": "send"})
    posted = await commander.client.post("/", data=later, allow_redirects=False)
    assert "?posted=" not in posted.headers["Location"]
    assert len(journaled(workdir)) == 2


async def test_errors_are_shown_beside_their_fields_and_what_was_typed_is_kept(
    commander: Commander, workdir: Path
) -> None:
    await commander.log_in()
    fields = {
        **UPDATE,
        **await commander.form_tokens(),
        "action": "send",
        "title": "",
        "status": "scheduled",
        "impact": "major",
        "component_name": ["Checkout", "Search"],
        "component_state": ["", "degraded_performance"],
        "message": "Typed with care & <kept>.",
        "next_update": "at",
        "next_update_time": "tomorrow",
        "channel": [],
    }
    shown = await commander.client.post("/", data=form_data(fields), allow_redirects=False)
    assert shown.status == 422
    html = await shown.text()
    assert "Nothing was sent" in html
    assert "at least 1 character" in field_error(html, "title")
    assert field_error(html, "components") == "choose a state for Checkout"
    assert field_error(html, "channels") == "choose at least one channel"
    assert "not a date and time" in field_error(html, "next_update")
    for field in ("title", "next_update"):
        assert re.search(rf'id="{field}"[^>]*aria-describedby="{field}-error" aria-invalid="true"', html), field
    assert '<textarea id="message"' in html and "Typed with care &amp; &lt;kept&gt;.</textarea>" in html
    assert 'value="Search"' in html and '<option value="degraded_performance" selected>' in html
    assert '<option value="scheduled" selected>' in html
    assert journaled(workdir) == []
    # The model's own checks, which need the fields above to be right first, are shown as well.
    fields.update(
        title="T", component_state=["operational", "degraded_performance"], next_update="", channel=["scripted"]
    )
    mismatch = await commander.client.post("/", data=form_data(fields))
    assert mismatch.status == 422
    assert "impact &#39;major&#39; does not go with maintenance status &#39;scheduled&#39;" in await mismatch.text()
    fields.update(impact="maintenance", channel=["scripted", "x"])  # x is not enabled here
    disabled = await commander.client.post("/", data=form_data(fields))
    assert disabled.status == 422
    assert field_error(await disabled.text(), "channels") == "not enabled here: x"
    assert journaled(workdir) == []


async def test_a_preview_shows_what_each_channel_will_send(open_commander: OpenCommander, workdir: Path) -> None:
    (workdir / "subscribers.csv").write_text("someone@example.com\n")
    config = (
        OTHER_CHANNELS
        + """
[[webhook.targets]]
url = "http://127.0.0.1:9/chat"
name = "chat"
format = "slack"
"""
    )
    async with open_commander(config) as commander:
        for channel in ("x", "email", "webhook"):  # nothing may go out, whatever this test does
            await commander.runtime.store.set_paused(channel, "", paused=True, reason="test", now=0.0)
        await commander.log_in()
        channels = ["x", "email", "webhook", "mirror", "scripted"]
        fields = {**UPDATE, **await commander.form_tokens(), "action": "preview", "channel": channels}
        shown = await commander.client.post("/", data=form_data(fields))
        assert shown.status == 200
        html = await shown.text()
        post = compose_post(
            status="Investigating",
            impact="Major outage",
            title="Checkout errors",
            message="Some card payments fail.",
            link=None,
        )
        assert f'<pre class="preview" id="preview-x">{post.text}</pre>' in html
        assert f"{weighted_length(post.text)} of 280 weighted characters" in html
        assert '<pre class="preview" id="preview-email">[Major outage] Checkout errors - Investigating</pre>' in html
        assert '<pre class="preview" id="preview-webhook">incident.update</pre>' in html
        assert "Statuspage JSON envelope to 1 target, Slack message to 1 target" in html
        assert "this channel shows no preview" in html  # the scripted test channel has no preview
        assert await commander.runtime.store.incidents() == []  # a preview journals nothing


async def test_a_template_starts_the_message_with_its_placeholders_filled(commander: Commander) -> None:
    """Without the page's script, "Use template" asks the server: the template named after the status, its
    {components} and {next_update} filled from the form; every configured template offered, raw, for the
    script to fill the same way."""
    await commander.log_in()
    fields = {**UPDATE, **await commander.form_tokens(), "action": "starter", "starter": "identified"}
    shown = await commander.client.post("/", data=form_data(fields))
    assert shown.status == 200
    html = await shown.text()
    message = re.search(r'<textarea id="message"[^>]*>\n(.*?)</textarea>', html, re.S)
    assert message
    filled = unescape(message.group(1))
    assert filled.startswith("We have found the cause of the problems with Checkout and are working on a fix. ")
    due = re.search(r"We will post an update by (\d{4}-\d\d-\d\d \d\d:\d\d) UTC\.$", filled)
    assert due, filled
    promised = datetime.strptime(due.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert abs(promised - (datetime.now(UTC) + timedelta(minutes=30))) < timedelta(minutes=2)  # UPDATE's 30m
    assert 'value="Checkout errors"' in html  # the rest as typed
    templates = commander.runtime.settings.templates
    for name, text in templates.items():
        assert f'<option value="{name}" data-template="{escape(text)}">' in html


async def test_open_incidents_are_listed_and_overdue_ones_stand_out(commander: Commander) -> None:
    store = commander.runtime.store
    now = datetime.now(UTC)
    for title, due in (("Late one", now + timedelta(hours=1)), ("On time", now + timedelta(hours=3))):
        draft = UpdateDraft(title=title, status=Status.IDENTIFIED, message="M", next_update_at=due)
        await commander.runtime.submit(draft)
    commander.runtime.clock = lambda: time.time() + 2 * 3600  # the service's clock, two hours on
    await commander.log_in()
    html = await (await commander.client.get("/")).text()
    late = (await store.incidents(open_only=True))[-1]
    assert late.name == "Late one"
    assert re.search(r'<div class="notice bad" role="alert" id="overdue">.*Late one', html, re.S)
    overdue_notice = html.split('id="overdue"')[1].split("</div>")[0]
    assert "On time" not in overdue_notice
    assert f'<input type="radio" name="incident" value="{late.id}">' in html
    assert html.count('<span class="badge overdue">Overdue</span>') == 1
    picked = await (await commander.client.get("/", params={"incident": late.id})).text()
    assert f'<input type="radio" name="incident" value="{late.id}" checked>' in picked
    assert '<option value="identified" selected>' in picked  # where the incident stands
