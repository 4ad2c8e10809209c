"""[webhook] settings: what is refused at start-up, what stays stable, what stays secret."""

from __future__ import annotations

import hashlib

import pytest

from config import ConfigError, load_settings
from config.webhook import signing_key
from tests.channels.webhook.conftest import target
from tests.conftest import WriteConfig

HOOK = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"


def error(write_config: WriteConfig, *targets: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config("[webhook]\nenabled = true\n" + "".join(targets)))
    return str(caught.value)


def test_defaults(write_config: WriteConfig) -> None:
    """A target needs only a url: json format, unsigned, 15 s timeout, no extra headers, no ping."""
    settings = load_settings(write_config("[webhook]\nenabled = true\n" + target("https://h.example/x")))
    (only,) = settings.webhook.targets
    assert (only.format, only.secret, only.timeout, only.headers, only.ping) == ("json", None, 15.0, {}, False)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"secret": "whsec_not*base64"}, "targets[0].secret: a whsec_ secret must be base64 after the prefix"),
        ({"secret": ""}, "targets[0].secret: is empty; leave it out to send unsigned deliveries"),
        ({"headers": {"Webhook-Signature": "v1,x"}}, "targets[0].headers: 'Webhook-Signature' is set by the"),
        ({"headers": {"Content-Type": "text/plain"}}, "targets[0].headers: 'Content-Type' is set by the"),
        ({"headers": {"Bad Name": "x"}}, "targets[0].headers: 'Bad Name' is not a valid header name"),
        ({"headers": {"X-A": "a\r\nInjected: yes"}}, "the value of 'X-A' contains a line break"),
        ({"timeout": 0}, "targets[0].timeout: Input should be greater than 0"),
        ({"format": "xml"}, "targets[0].format: Input should be 'json', 'slack', 'discord' or 'teams'"),
        ({"pings": True}, "targets[0].pings: unknown key (did you mean 'ping'?)"),
    ],
)
def test_bad_targets_are_refused_at_start_up(write_config: WriteConfig, keys: dict[str, object], message: str) -> None:
    """Each mistake stops the start with the key's name and the reason."""
    assert message in error(write_config, target("https://h.example/x", **keys))


def test_url_must_name_a_host_and_a_valid_port(write_config: WriteConfig) -> None:
    """A URL without a host, or with a port that is not a number, is refused."""
    assert "targets[0].url: has no host name" in error(write_config, target("https:///path"))
    assert "targets[0].url: Port could not be cast" in error(write_config, target("https://h.example:http/x"))


def test_secret_values_are_never_echoed(write_config: WriteConfig) -> None:
    """A refused secret is named, never quoted."""
    assert "whsec_not*base64" not in error(write_config, target("https://h.example/x", secret="whsec_not*base64"))


def test_labels_are_stable_and_secret_free(write_config: WriteConfig) -> None:
    """The ledger name is the configured name, else host plus a hash of the URL: never the URL's secret path."""
    text = "[webhook]\nenabled = true\n" + target(HOOK, format="slack") + target("https://h.example/x", name="ops")
    names = load_settings(write_config(text)).webhook.target_names()
    assert names == [f"hooks.slack.com#{hashlib.sha256(HOOK.encode()).hexdigest()[:8]}", "ops"]
    assert load_settings(write_config(text)).webhook.target_names() == names  # the same on every start
    assert "secret" not in names[0].lower()


def test_header_values_and_secrets_are_masked_and_scrubbed(write_config: WriteConfig) -> None:
    """Signing secrets and header values are SecretStr: masked in dumps and listed for scrubbing."""
    settings = load_settings(
        write_config(
            "[webhook]\nenabled = true\n"
            + target("https://h.example/x", secret="plain-s3cret", headers={"Authorization": "Bearer t0k3n"})
        )
    )
    dumped = settings.model_dump_json()
    assert "plain-s3cret" not in dumped and "t0k3n" not in dumped
    assert {"plain-s3cret", "Bearer t0k3n"} <= set(settings.secret_values())


def test_signing_keys() -> None:
    """whsec_ secrets are base64-decoded (padding optional); other secrets are their UTF-8 bytes."""
    assert signing_key("whsec_YWJj") == b"abc"
    assert signing_key("whsec_YWI") == b"ab"  # unpadded, as the reference libraries accept
    assert signing_key("s3cr\u00e9t") == "s3cr\u00e9t".encode()
    with pytest.raises(ValueError, match="base64"):
        signing_key("whsec_a")
