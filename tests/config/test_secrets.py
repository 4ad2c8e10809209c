"""What is secret (config.secrets) and the Scrubber that masks it (config.scrubber)."""

from __future__ import annotations

import base64
from typing import Annotated
from urllib.parse import quote, quote_plus

import pytest
from pydantic import BaseModel

from config import load_settings
from config.scrubber import CROWDED, Scrubber
from config.secrets import MASK, SecretUrl, basic_credentials, collect_secrets, mask_url, masked_dump, url_secrets
from tests.conftest import WriteConfig

TOKEN = "s3cr3t+t0k/en=x y"  # has characters that every encoding changes
USERINFO_URL = "https://hookuser:p4ss%40word@hooks.example.com:8443/hooks/T0K3N-7f3a?token=QU3RY-19c2&format=json#frag"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


ENCODED_FORMS = {
    "as typed": TOKEN,
    "quote, nothing safe": quote(TOKEN, safe=""),
    "quote, / kept": quote(TOKEN),
    "quote_plus": quote_plus(TOKEN),
    "base64": b64(TOKEN),
    "base64 unpadded": b64(TOKEN).rstrip("="),
    "base64 URL-safe": b64url(TOKEN),
    "base64 URL-safe unpadded": b64url(TOKEN).rstrip("="),
    "percent-encoded twice": quote(quote(TOKEN, safe=""), safe=""),
}


@pytest.mark.parametrize("form", ENCODED_FORMS.values(), ids=ENCODED_FORMS.keys())
def test_a_credential_is_scrubbed_in_every_form(form: str) -> None:
    scrubbed = Scrubber([TOKEN])(f'the receiver said: "bad token {form}", try again')
    assert form not in scrubbed
    assert scrubbed.startswith('the receiver said: "bad token ') and scrubbed.endswith('", try again')
    assert MASK in scrubbed


def test_a_percent_encoded_url_part_is_masked_with_its_whole_run() -> None:
    """A URL quoted into another URL's query: the run holding the path is masked, the rest of the text kept."""
    scrub = Scrubber(url_parts=url_secrets(USERINFO_URL))
    text = f"redirect to /login?next={quote(USERINFO_URL, safe='')} please"
    assert scrub(text) == f"redirect to /login?next={MASK} please"


def test_userinfo_is_scrubbed_as_the_basic_credentials_a_client_sends() -> None:
    scrub = Scrubber(url_parts=url_secrets(USERINFO_URL))
    header = f"Authorization: Basic {basic_credentials('hookuser', 'p4ss@word')}"
    assert scrub(header) == f"Authorization: Basic {MASK}"
    assert basic_credentials("hookuser", "p4ss@word") == b64("hookuser:p4ss@word")


def test_a_secret_at_the_start_and_the_end_of_a_text() -> None:
    scrub = Scrubber(["alpha-secret", "omega-secret"])
    assert scrub("alpha-secret in the middle omega-secret") == f"{MASK} in the middle {MASK}"
    assert scrub("omega-secret") == MASK


def test_overlapping_and_touching_secrets_are_masked_as_one() -> None:
    scrub = Scrubber(["abcdef", "defghi", "ghij"])
    assert scrub("xx abcdefghij yy") == f"xx {MASK} yy"
    assert scrub("abcdefabcdef") == MASK  # touching occurrences of one secret


def test_a_secret_inside_a_longer_one_masks_the_longer_one_whole() -> None:
    scrub = Scrubber(["T0K3N", "/hooks/T0K3N"])
    assert scrub("POST /hooks/T0K3N failed; T0K3N unknown") == f"POST {MASK} failed; {MASK} unknown"


def test_a_text_without_secrets_comes_back_unchanged() -> None:
    scrub = Scrubber(["abcdef-secret"] + [f"token-{n:05d}" for n in range(1000)])
    text = "HTTP 500 Internal Server Error: the receiver is down (100% of requests failed)"
    assert scrub(text) is text
    assert Scrubber()(text) is text
    assert scrub("") == ""


def test_secrets_under_the_minimum_length_are_not_scrubbed() -> None:
    """One to three characters cannot be told from ordinary text; four can."""
    scrub = Scrubber(["ab", "xyz", "p4ss"])
    assert scrub("ab xyz cabxyz p4ss") == f"ab xyz cabxyz {MASK}"
    assert len(Scrubber(["ab", "xyz"])) == 0


def test_many_secrets_ending_alike_are_all_scrubbed() -> None:
    """Paths that all end in "/webhook" share one index window: they are spread over windows of their own."""
    paths = [f"/team-{n}/webhook" for n in range(CROWDED * 20)]
    scrub = Scrubber(url_parts=paths)
    for path in paths[:: CROWDED + 1]:
        assert scrub(f"POST {path} answered 500") == f"POST {MASK} answered 500"
    assert scrub("POST /team-x/webhook answered 500") == "POST /team-x/webhook answered 500"


def test_url_secrets_are_the_credential_bearing_parts() -> None:
    assert url_secrets(USERINFO_URL) == [
        "hookuser:p4ss%40word",
        "p4ss@word",
        basic_credentials("hookuser", "p4ss@word"),
        "/hooks/T0K3N-7f3a",
        "\\/hooks\\/T0K3N-7f3a",  # as a receiver echoing it in JSON writes it
        "T0K3N-7f3a",  # a segment that looks like a credential, echoed on its own ("hooks" does not)
        "token=QU3RY-19c2&format=json",
        "QU3RY-19c2",  # "json" is not a credential on its own: it would shred every text saying json
        "frag",
    ]
    assert url_secrets("https://hooks.example.com/") == []
    assert url_secrets("https://hooks.example.com") == []
    assert url_secrets("https://ghp_t0ken@github.com") == ["ghp_t0ken", "ghp_t0ken", basic_credentials("ghp_t0ken", "")]
    assert url_secrets("redis://:pw@db:6379/0", path_is_secret=False) == [":pw", "pw", basic_credentials("", "pw")]
    assert url_secrets("not a url") == ["not a url"]


@pytest.mark.parametrize(
    ("url", "shown", "shown_with_path"),
    [
        (USERINFO_URL, "https://hooks.example.com:8443/…", "https://…@hooks.example.com:8443/hooks/T0K3N-7f3a?…"),
        ("https://hooks.example.com/", "https://hooks.example.com/", "https://hooks.example.com/"),
        ("https://hooks.example.com", "https://hooks.example.com", "https://hooks.example.com"),
        ("sqlite:///var/broadcaster.db", "sqlite:///…", "sqlite:///var/broadcaster.db"),
        ("redis://:pw@db:6379/0", "redis://db:6379/…", "redis://…@db:6379/0"),
        ("https://[::1/unbalanced", "…", "…"),
        ("", "", ""),
    ],
)
def test_mask_url_shows_scheme_and_host_only(url: str, shown: str, shown_with_path: str) -> None:
    assert mask_url(url) == shown
    assert mask_url(url, keep_path=True) == shown_with_path


class _Future(BaseModel):
    """A later feature's settings: credential-bearing URLs marked with one annotation each."""

    response_urls: list[Annotated[str, SecretUrl()]] = []
    git_remote: Annotated[str, SecretUrl(path_is_secret=False)] = ""
    title: str = ""


def test_a_secret_url_annotation_is_all_a_new_field_needs() -> None:
    model = _Future(
        response_urls=["https://hooks.slack.com/commands/T1/R2/xyz-rEsp0nse"],
        git_remote="https://x-access-token:ghs_g1tT0ken@github.com/org/status.git",
        title="https://public.example.com/not-secret",
    )
    assert set(collect_secrets(model).values()) == {
        "/commands/T1/R2/xyz-rEsp0nse",
        "\\/commands\\/T1\\/R2\\/xyz-rEsp0nse",
        "xyz-rEsp0nse",
        "x-access-token:ghs_g1tT0ken",
        "ghs_g1tT0ken",
        basic_credentials("x-access-token", "ghs_g1tT0ken"),
    }
    assert masked_dump(model) == {
        "response_urls": ["https://hooks.slack.com/…"],
        "git_remote": "https://…@github.com/org/status.git",
        "title": "https://public.example.com/not-secret",
    }


def test_the_settings_scrubber_covers_webhook_urls_headers_and_the_store(write_config: WriteConfig) -> None:
    settings = load_settings(
        write_config(
            '[store]\nurl = "redis://:st0re-pw@db.internal:6379/0"\n'
            "[webhook]\nenabled = true\n"
            '[[webhook.targets]]\nurl = "https://h.example/hooks/T0K3N-1?key=QU3RY-1"\nsecret = "plain-s1gning"\n'
            '[[webhook.targets]]\nurl = "https://h.example/other"\nheaders = { Authorization = "Bearer b34rer-2" }\n'
        )
    )
    scrub = settings.scrubber
    assert scrub is settings.scrubber  # built once per settings
    text = (
        "GET https://h.example/hooks/T0K3N-1?key=QU3RY-1 b34rer-2 Bearer b34rer-2 /other plain-s1gning "
        "redis://:st0re-pw@db.internal:6379/0"
    )
    assert (
        scrub(text)
        == f"GET https://h.example{MASK}?{MASK} {MASK} {MASK} {MASK} {MASK} redis://{MASK}@db.internal:6379/0"
    )
    shown = masked_dump(settings)
    assert [t["url"] for t in shown["webhook"]["targets"]] == ["https://h.example/…", "https://h.example/…"]
    assert shown["store"]["url"] == "redis://…@db.internal:6379/0"
    assert shown["webhook"]["targets"][1]["headers"] == {"Authorization": "**********"}
