"""The chat command grammar: every form parses, every mistake is named in one safe line, and what parses
makes an UpdateDraft that validates."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from broadcaster.domain.drafts import validate_draft
from broadcaster.domain.models import MAX_COMPONENTS, MAX_MESSAGE, MAX_TITLE
from broadcaster.domain.vocabulary import ComponentState, Impact, Status
from broadcaster.web.chatops.grammar import (
    USAGE,
    ChatCommandError,
    NewIncident,
    ResolveIncident,
    ShowHelp,
    ShowStatus,
    Submission,
    UpdateIncident,
    draft_fields,
    parse_command,
)

ID = "7k2m9q4x1c8d"
NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
MAJOR = ComponentState.MAJOR_OUTAGE
# What an error must never show raw: controls (line breaks and tabs included), bidi overrides, surrogates.
RAW = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def error(text: str) -> str:
    with pytest.raises(ChatCommandError) as caught:
        parse_command(text)
    return str(caught.value)


@pytest.mark.parametrize("text", ["", "   \n\t ", "help", "HELP", " Help ", "help new"])
def test_help_and_empty_text_ask_for_the_usage(text: str) -> None:
    assert parse_command(text) == ShowHelp()


@pytest.mark.parametrize("text", ["status", "STATUS", "  Status\n"])
def test_status_lists_the_open_incidents(text: str) -> None:
    assert parse_command(text) == ShowStatus()


def test_status_with_anything_after_it_is_refused_rather_than_listing_all() -> None:
    assert '"status" takes nothing after it' in error(f"status {ID}")


def test_new_parses_impact_title_and_message() -> None:
    assert parse_command("new major API errors | Some card payments fail.") == NewIncident(
        Impact.MAJOR, "API errors", "Some card payments fail.", {}, None
    )


@pytest.mark.parametrize(
    "title", ["API errors", '"API errors"', "'API errors'", "\u201cAPI errors\u201d", "\u2018API errors\u2019"]
)
def test_quotes_around_the_title_are_optional_in_every_style(title: str) -> None:
    command = parse_command(f"new minor {title} | Looking into it.")
    assert isinstance(command, NewIncident)
    assert command.title == "API errors"
    assert command.message == "Looking into it."


@pytest.mark.parametrize(
    ("text", "title", "message"),
    [
        ('new minor "Login | SSO" | Some fail.', "Login | SSO", "Some fail."),  # a quoted title may hold "|"
        ("new minor Can't log in | Some fail.", "Can't log in", "Some fail."),  # an apostrophe is no quote
        ('new minor "Login" SSO | Some fail.', '"Login" SSO', "Some fail."),  # quotes not around it all stay
        ("new minor A|B|C", "A", "B|C"),  # the title ends at the first "|", the message keeps the rest
        ("new minor API errors\n| Some fail.", "API errors", "Some fail."),
    ],
)
def test_where_the_title_ends(text: str, title: str, message: str) -> None:
    command = parse_command(text)
    assert isinstance(command, NewIncident)
    assert (command.title, command.message) == (title, message)


@pytest.mark.parametrize("word", ["none", "minor", "major", "critical", "MAJOR", "Critical"])
def test_new_takes_every_incident_impact_in_any_case(word: str) -> None:
    command = parse_command(f"new {word} API errors | Looking into it.")
    assert isinstance(command, NewIncident)
    assert command.impact is Impact(word.lower())


@pytest.mark.parametrize(
    ("word", "status"),
    [(status.value, status) for status in Status]
    + [
        ("in-progress", Status.IN_PROGRESS),
        ("in progress", Status.IN_PROGRESS),
        ("In Progress", Status.IN_PROGRESS),
        ("IN_PROGRESS", Status.IN_PROGRESS),
        ("Monitoring", Status.MONITORING),
    ],
)
def test_update_takes_every_status_in_any_spelling(word: str, status: Status) -> None:
    assert parse_command(f"update {ID} {word} A fix is out.") == UpdateIncident(ID, status, "A fix is out.")


def test_resolve_parses_the_incident_and_message() -> None:
    assert parse_command(f"resolve {ID} All payments go through again.") == ResolveIncident(
        ID, "All payments go through again."
    )


def test_an_incident_id_in_capitals_is_taken_in_lower_case() -> None:
    assert parse_command(f"RESOLVE {ID.upper()} Done.") == ResolveIncident(ID, "Done.")


@pytest.mark.parametrize(
    ("clauses", "components"),
    [
        ("component API=major_outage", {"API": MAJOR}),
        ("component API=major-outage", {"API": MAJOR}),
        ("component API = Major-Outage", {"API": MAJOR}),
        ('component "Checkout API"=major_outage', {"Checkout API": MAJOR}),
        ("component 'Checkout API'=major_outage", {"Checkout API": MAJOR}),
        ("component \u201cCheckout API\u201d=major_outage", {"Checkout API": MAJOR}),
        ("component \u2018Checkout API\u2019=major_outage", {"Checkout API": MAJOR}),
        ('component "a=b"=operational', {"a=b": ComponentState.OPERATIONAL}),
        (
            "component API=degraded-performance component Web=partial_outage component DB=under_maintenance",
            {
                "API": ComponentState.DEGRADED_PERFORMANCE,
                "Web": ComponentState.PARTIAL_OUTAGE,
                "DB": ComponentState.UNDER_MAINTENANCE,
            },
        ),
    ],
)
def test_component_clauses_on_every_form(clauses: str, components: dict[str, ComponentState]) -> None:
    new = parse_command(f"new major API errors | {clauses} Some fail.")
    update = parse_command(f"update {ID} identified {clauses} Some fail.")
    resolve = parse_command(f"resolve {ID} {clauses} Some fail.")
    assert new == NewIncident(Impact.MAJOR, "API errors", "Some fail.", components)
    assert update == UpdateIncident(ID, Status.IDENTIFIED, "Some fail.", components)
    assert resolve == ResolveIncident(ID, "Some fail.", components)


def test_the_most_components_allowed_are_accepted() -> None:
    clauses = " ".join(f"component c{n}=operational" for n in range(MAX_COMPONENTS))
    command = parse_command(f"resolve {ID} {clauses} All clear.")
    assert isinstance(command, ResolveIncident)
    assert len(command.components) == MAX_COMPONENTS


@pytest.mark.parametrize(
    ("duration", "minutes"),
    [("30m", 30), ("1h", 60), ("90m", 90), ("1h30m", 90), ("2h", 120), ("1m", 1), ("24h", 1440), ("1H30M", 90)],
)
def test_next_in_every_duration_form(duration: str, minutes: int) -> None:
    expected = timedelta(minutes=minutes)
    new = parse_command(f"new minor API errors | next {duration} Looking into it.")
    update = parse_command(f"update {ID} monitoring next {duration} Watching.")
    assert isinstance(new, NewIncident)
    assert isinstance(update, UpdateIncident)
    assert (new.next_update_in, new.message) == (expected, "Looking into it.")
    assert (update.next_update_in, update.message) == (expected, "Watching.")


def test_clauses_come_in_any_order() -> None:
    one = parse_command(f"update {ID} identified component A=major_outage next 30m component B=operational Fixing.")
    two = parse_command(f"update {ID} identified next 30m component B=operational component A=major_outage Fixing.")
    components = {"A": MAJOR, "B": ComponentState.OPERATIONAL}
    assert one == two
    assert one == UpdateIncident(ID, Status.IDENTIFIED, "Fixing.", components, timedelta(minutes=30))


def test_every_keyword_is_case_insensitive() -> None:
    command = parse_command(f"UPDATE {ID} MONITORING NEXT 1H COMPONENT Api=MAJOR-OUTAGE Watching.")
    assert command == UpdateIncident(ID, Status.MONITORING, "Watching.", {"Api": MAJOR}, timedelta(hours=1))


def test_a_message_keeps_its_lines_and_inner_spacing_and_loses_only_its_ends() -> None:
    command = parse_command(f"update {ID} identified next 1h\n  Cause found:\n\n  - a bad deploy\n\tRolling back.  \n")
    assert isinstance(command, UpdateIncident)
    assert command.message == "Cause found:\n\n  - a bad deploy\n\tRolling back."


def test_a_title_may_begin_with_a_quoted_word() -> None:
    assert parse_command('new minor "Login" is slow | Some sign-ins take a minute.') == NewIncident(
        Impact.MINOR, '"Login" is slow', "Some sign-ins take a minute."
    )


@pytest.mark.parametrize(
    "message",
    [
        "next steps are being planned",
        "Next, we restart the workers.",
        "next",
        "component failure in the load balancer",
        "component API is flapping",  # a name, but no state after it
        "component",
        "components API=major_outage are down",  # only the exact word starts a clause
        "All clear. next 30m component API=operational",  # clauses after the message start are message
    ],
)
def test_a_message_may_begin_with_a_clause_word_that_begins_no_clause(message: str) -> None:
    assert parse_command(f"update {ID} monitoring {message}") == UpdateIncident(ID, Status.MONITORING, message)
    assert parse_command(f"resolve {ID} {message}") == ResolveIncident(ID, message)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("frobnicate", "unknown command 'frobnicate': use new, update, resolve, status or help"),
        ("new major API errors", '"new" needs "|" between the title and the message'),
        ("new major | Some fail.", '"new" needs a title before "|"'),
        ('new major "" | Some fail.', '"new" needs a title before "|"'),
        ("new major API errors |  ", '"new" needs a message after "|"'),
        ("new major API errors | next 30m component API=major_outage", '"new" needs a message after "|"'),
        ("new huge API errors | Some fail.", "unknown impact 'huge': use none, minor, major or critical"),
        ("new maintenance DB upgrade | Soon.", "unknown impact 'maintenance': use none, minor, major or critical"),
        ("new", '"new" needs an impact: use none, minor, major or critical'),
        ("new major API\nerrors | Some fail.", "the title must be one line"),
        (f"new major {'x' * (MAX_TITLE + 1)} | Some fail.", f"the title is {MAX_TITLE + 1} characters long"),
        (f"update {ID} fixed It works.", "unknown status 'fixed': use investigating, identified, monitoring, "),
        (f"update {ID}", '"update" needs a status after the incident id'),
        (f"update {ID} monitoring", '"update" needs a message'),
        (f"update {ID} monitoring next 1h", '"update" needs a message'),
        (f"update {ID} monitoring {'x' * (MAX_MESSAGE + 1)}", f"the message is {MAX_MESSAGE + 1} characters long"),
        ("update xyz monitoring Watching.", "not an incident id: 'xyz'"),
        (f"update {ID}x monitoring Watching.", f"not an incident id: '{ID}x'"),
        ("update", '"update" needs an incident id'),
        ("resolve", '"resolve" needs an incident id'),
        ("resolve abc All clear.", "not an incident id: 'abc'"),
        (f"resolve {ID}", '"resolve" needs a message'),
        (f"resolve {ID}  component API=operational", '"resolve" needs a message'),
        (f"resolve {ID} component API=broken Fixed.", "unknown component state 'broken': use operational, "),
        (f"resolve {ID} component API=", "component 'API' needs a state after \"=\": use operational, "),
        (f"resolve {ID} component API major_outage Fixed.", "component wants <name>=<state>"),
        (f'resolve {ID} component "Checkout API" major-outage Fixed.', "component wants <name>=<state>"),
        (f'resolve {ID} component "Checkout API" Fixed.', "component wants <name>=<state>"),
        (f"resolve {ID} component =operational Fixed.", 'component needs a name before "="'),
        (f'resolve {ID} component ""=operational Fixed.', 'component needs a name before "="'),
        (f'resolve {ID} component "Checkout API=operational Fixed.', 'lacks its closing "'),
        (f"resolve {ID} component {'n' * 101}=operational Fixed.", "the component name is 101 characters long"),
        (f"resolve {ID} component A=operational component A=major_outage Ok.", "component 'A' is given twice"),
        (f"resolve {ID} next 30m All clear.", '"resolve" takes no next clause'),
        (f"update {ID} resolved next 30m All clear.", "next does not go with status resolved"),
        (f"update {ID} completed next 30m Done.", "next does not go with status completed"),
        (f"update {ID} monitoring next 30m next 1h Watching.", "next is given twice"),
        (
            f"update {ID} identified component Checkout API=major_outage All down.",
            'quote a component name with spaces: component "Checkout API"=major_outage',
        ),
        (f"update {ID} identified component API down Payments fail.", "component wants <name>=<state>"),
        ('new major "API | DB" errors | Some fail.', 'a quoted title holding "|" must end with its closing "'),
    ],
)
def test_every_malformed_command_gets_its_own_error(text: str, problem: str) -> None:
    assert problem in error(text)


@pytest.mark.parametrize(
    "duration", ["30s", "1.5h", "30", "1m1h", "1h30", "90 m", "0m", "0h", "0h0m", "25h", "24h1m", "1441m", "9" * 40]
)
def test_next_refuses_a_bad_zero_or_too_long_duration(duration: str) -> None:
    expected = "next wants a duration like 30m or 1h, from 1m to 24h (got "
    assert error(f"update {ID} monitoring next {duration} Watching.").startswith(expected)


def test_more_components_than_allowed_are_refused() -> None:
    clauses = " ".join(f"component c{n}=operational" for n in range(MAX_COMPONENTS + 1))
    assert f"too many components: at most {MAX_COMPONENTS}" in error(f"resolve {ID} {clauses} All clear.")


@pytest.mark.parametrize(
    "text",
    [
        "frob\x1b[31mnicate",
        "\x9b2J\u202eevil",
        "bad\udcffbyte",
        "status \x1b]0;title\x07\nsecond line",
        "new huge\x1b[2J API | Some fail.",
        "update abc\x07\x7f monitoring Watching.",
        f"update {ID} fixed\u202e Watching.",
        f'resolve {ID} component "A\nB\x1b[0m" major_outage Fixed.',
        f"resolve {ID} component A=\x1b[5mbroken Fixed.",
        f"update {ID} monitoring next 1\x1b[8mh Watching.",
    ],
)
def test_errors_are_one_line_without_raw_control_characters(text: str) -> None:
    problem = error(text)
    assert RAW.search(problem) is None, problem
    assert "\\u" in problem  # the offending character is shown, escaped


def test_echoed_input_is_cut_short() -> None:
    problem = error("frobnicate" * 100)
    assert len(problem) < 120
    assert "frobnicatefrob" in problem


@pytest.mark.parametrize(
    ("text", "expected", "minutes"),
    [
        (
            'new critical "Checkout down" | component "Checkout API"=major_outage next 1h30m Cards fail.',
            {"title": "Checkout down", "status": "investigating", "impact": "critical"},
            90,
        ),
        ("new none Slow search | Searches are slow.", {"title": "Slow search", "impact": "none"}, None),
        (
            f"update {ID} identified component API=partial-outage next 30m A faulty deploy.",
            {"incident_id": ID, "status": "identified", "impact": None},
            30,
        ),
        (f"update {ID} in progress next 2h Migrating.", {"incident_id": ID, "status": "in_progress"}, 120),
        (f"resolve {ID} component API=operational All clear.", {"incident_id": ID, "status": "resolved"}, None),
    ],
)
def test_draft_fields_make_a_valid_update_draft(
    text: str, expected: dict[str, str | None], minutes: int | None
) -> None:
    command = parse_command(text)
    assert isinstance(command, NewIncident | UpdateIncident | ResolveIncident)
    draft = validate_draft(draft_fields(command, now=NOW, author="slack:U123"), {})
    assert draft.next_update_at == (None if minutes is None else NOW + timedelta(minutes=minutes))
    assert (draft.message, draft.author, draft.components) == (command.message, "slack:U123", command.components)
    assert {name: getattr(draft, name) for name in expected} == expected


def test_draft_fields_are_plain_values_and_an_aware_next_update_time() -> None:
    command = parse_command("new major API errors | component API=major_outage next 30m Some fail.")
    assert isinstance(command, NewIncident)
    assert draft_fields(command, now=NOW, author="mm:alice") == {
        "title": "API errors",
        "status": "investigating",
        "impact": "major",
        "message": "Some fail.",
        "components": {"API": "major_outage"},
        "next_update_at": NOW + timedelta(minutes=30),
        "author": "mm:alice",
    }


def test_draft_fields_refuse_a_naive_now() -> None:
    """A naive `now` would give a next update time UpdateDraft refuses: the caller's mistake, found early."""
    command: Submission = ResolveIncident(ID, "All clear.")
    with pytest.raises(ValueError, match="time zone"):
        draft_fields(command, now=NOW.replace(tzinfo=None), author="")


def test_every_example_in_the_usage_parses() -> None:
    examples = USAGE.split("Examples:\n", 1)[1].splitlines()
    commands = [parse_command(example) for example in examples]
    kinds = [type(command) for command in commands]
    assert kinds == [NewIncident, UpdateIncident, ResolveIncident, ShowStatus, ShowHelp]


def test_the_usage_names_every_impact_status_and_state() -> None:
    words = [*(impact.value for impact in Impact if impact is not Impact.MAINTENANCE), *Status, *ComponentState]
    assert all(word in USAGE for word in words)
